// Runs every benchmark in test/bench/ one after another (each in its own process), or the ones named: `npm run bench -- segments`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.ts$/, '')));

let failed = 0;
for (const file of benches) {
  process.stdout.write(`\n=== bench ${file} ===\n`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', `${dir}/${file}`], { stdio: 'inherit' });
  process.stdout.write(`=== ${file}: exit ${r.status} in ${((Date.now() - started) / 1000).toFixed(1)} s ===\n`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
