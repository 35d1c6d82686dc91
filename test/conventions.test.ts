// The project's standing rules (../shared/STYLE.md), checked on every file of the source tree.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorRegistry } from '../connector/errors.js';
import { configVariables } from '../connector/config.js';

const root = resolve(import.meta.dirname, '..');
const sourceRoots = ['fhir', 'connector', 'extension'];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

const files = sourceRoots.flatMap((d) => walk(join(root, d)));
const code = files.filter((f) => /\.(ts|tsx)$/.test(f));
const rel = (f: string) => relative(root, f);
const importsOf = (text: string) =>
  [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
    (m) => (m[1] ?? m[2])!,
  );

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), `${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      /* next candidate */
    }
  }
  return undefined;
}

describe('conventions', () => {
  it('points dependencies one way: fhir knows nothing of connector, connector nothing of extension', () => {
    const bad: string[] = [];
    for (const f of code) {
      const r = rel(f);
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const target = resolveImport(f, spec);
        if (!target) continue;
        const t = rel(target);
        if (r.startsWith('fhir/') && (t.startsWith('connector/') || t.startsWith('extension/'))) bad.push(`${r} -> ${t}`);
        if (r.startsWith('connector/') && t.startsWith('extension/')) bad.push(`${r} -> ${t}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keeps the extension free of Node built-ins, also through the shared modules it imports', () => {
    const bad: string[] = [];
    const seen = new Set<string>();
    const visit = (f: string, via: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        if (spec.startsWith('node:') || ['fs', 'path', 'crypto', 'net', 'tls', 'os', 'child_process'].includes(spec)) {
          bad.push(`${rel(f)} (via ${via}) imports ${spec}`);
        }
        const target = resolveImport(f, spec);
        if (target && /\.(ts|tsx)$/.test(target)) visit(target, via);
      }
    };
    for (const f of code.filter((f) => rel(f).startsWith('extension/') && !rel(f).endsWith('vite.config.ts'))) visit(f, rel(f));
    expect(bad).toEqual([]);
  });

  it('reads process.env only in connector/config.ts', () => {
    const bad = code.filter((f) => rel(f) !== 'connector/config.ts' && /process\.env/.test(readFileSync(f, 'utf8')));
    expect(bad.map(rel)).toEqual([]);
  });

  it('has no console.log in library code', () => {
    const bad = code.filter((f) => !/cli|\/bin\//.test(rel(f)) && /console\.log/.test(readFileSync(f, 'utf8')));
    expect(bad.map(rel)).toEqual([]);
  });

  it('never disables TLS verification globally', () => {
    const all = [...files, ...walk(join(root, 'test')), join(root, 'package.json'), join(root, '.ci/run')];
    const bad = all.filter((f) => !f.endsWith('conventions.test.ts') && readFileSync(f, 'utf8').includes('NODE_TLS_REJECT_' + 'UNAUTHORIZED'));
    expect(bad.map(rel)).toEqual([]);
  });

  it('opens every source file with a line on what it is for', () => {
    const bad = files
      .filter((f) => /\.(ts|tsx|sql)$/.test(f))
      .filter((f) => !/^\s*(\/\/|\/\*|--)/.test(readFileSync(f, 'utf8')));
    expect(bad.map(rel)).toEqual([]);
  });

  it('throws only registered error codes, each documented in the registry and the README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const used = new Set<string>();
    for (const f of code) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:fail|new OutreachError|new FhirError)\(\s*'([A-Z_]+)'/g)) used.add(m[1]!);
    }
    const unknown = [...used].filter((c) => !(c in errorRegistry));
    expect(unknown).toEqual([]);
    const undocumented = Object.entries(errorRegistry)
      .filter(([c, spec]) => !spec.doc || !readme.includes(`\`${c}\``))
      .map(([c]) => c);
    expect(undocumented).toEqual([]);
  });

  it('documents every configuration variable in the README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(Object.keys(configVariables).filter((v) => !readme.includes(`\`${v}\``))).toEqual([]);
  });
});
