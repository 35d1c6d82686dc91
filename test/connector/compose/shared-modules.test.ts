// The compose modules the extension bundles (scanner, tag registry, templates, rendering) import no Node built-in, also transitively.
import { readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const shared = ['phi-scanner.ts', 'phi-terms.ts', 'merge-tags.ts', 'template.ts', 'render.ts', 'sample-facts.ts'].map((f) => resolve(root, 'connector/compose', f));
const builtins = new Set(['fs', 'path', 'crypto', 'net', 'tls', 'os', 'child_process', 'stream', 'util', 'buffer', 'events', 'url', 'zlib']);

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2])!);
}

function resolveTs(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const candidate = resolve(dirname(from), spec).replace(/\.js$/, '.ts');
  try {
    return statSync(candidate).isFile() ? candidate : undefined;
  } catch {
    return undefined;
  }
}

describe('compose modules shared with the extension', () => {
  it('import no Node built-in, directly or through what they import', () => {
    const bad: string[] = [];
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of imports(file)) {
        if (spec.startsWith('node:') || builtins.has(spec)) bad.push(`${relative(root, file)} imports ${spec}`);
        const next = resolveTs(file, spec);
        if (next) visit(next);
      }
    };
    shared.forEach(visit);
    expect(seen.size).toBeGreaterThanOrEqual(shared.length);
    expect(bad).toEqual([]);
  });
});
