// Regenerates the README's error-code and configuration tables from the registries: `node --import tsx test/support/readme-tables.ts`.
import { readFileSync, writeFileSync } from 'node:fs';
import { errorRegistry } from '../../connector/errors.js';
import { configVariables } from '../../connector/config.js';

const cell = (s: string) => s.replace(/\|/g, '\\|');
export function errorTable(): string {
  const rows = Object.entries(errorRegistry).map(([c, v]) => `| \`${c}\` | ${v.status} | ${cell(v.doc)} |`);
  return ['| code | HTTP | meaning |', '|---|---|---|', ...rows].join('\n');
}
export function configTable(): string {
  const rows = Object.entries(configVariables).map(([c, v]) => `| \`${c}\` | ${cell(v)} |`);
  return ['| variable | meaning |', '|---|---|', ...rows].join('\n');
}

function replaceBlock(text: string, name: string, body: string): string {
  const re = new RegExp(`(<!-- ${name}:start -->)[\\s\\S]*?(<!-- ${name}:end -->)`);
  if (!re.test(text)) throw new Error(`README lacks the ${name} markers`);
  return text.replace(re, `$1\n${body}\n$2`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = new URL('../../README.md', import.meta.url);
  let text = readFileSync(file, 'utf8');
  text = replaceBlock(text, 'errors', errorTable());
  text = replaceBlock(text, 'config', configTable());
  writeFileSync(file, text);
}
