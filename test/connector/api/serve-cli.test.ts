// `outreach serve` as an operator runs it: plain HTTP on loopback answers, a non-loopback address without TLS is refused, SIGTERM stops it cleanly.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../../connector/bin/outreach.js', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'outreach-serve-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function run(args: string[]) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OUTREACH_') && !k.startsWith('DATABASE_')) env[k] = v;
  const child = spawn(process.execPath, [bin, '--json', ...args], { env: { ...env, OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** Resolves with the first complete JSON document the command prints. */
  const document = new Promise<any>((resolve, reject) => {
    const tryParse = () => {
      try {
        resolve(JSON.parse(stdout));
      } catch {
        /* not complete yet */
      }
    };
    child.stdout.on('data', tryParse);
    void exited.then((code) => reject(new Error(`exited ${code} before printing: ${stderr}`)));
  });
  return { child, exited, document, output: () => ({ stdout, stderr }) };
}

it('serves the API on loopback until SIGTERM', async () => {
  const serve = run(['serve', '--port', '0']);
  const started = await serve.document;
  expect(started).toMatchObject({ tls: false, delivering: true });
  expect(started.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1$/);
  const health = await fetch(`${started.api}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok', store: 'ok' });
  serve.child.kill('SIGTERM');
  expect(await serve.exited).toBe(0);
});

it('refuses plain HTTP on an address other than loopback', async () => {
  const serve = run(['serve', '--host', '0.0.0.0', '--port', '0']);
  expect(await serve.exited).toBe(1);
  expect(JSON.parse(serve.output().stdout)).toMatchObject({ error: { code: 'INVALID_CONFIG' } });
});
