// `outreach keys`: rotation queued for the background, status with progress, reseal, retirement and master key re-wrap.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp } from '../../../connector/app.js';
import { loadConfig } from '../../../connector/config.js';
import { createLogger } from '../../../connector/logger.js';
import { generateMasterKey } from '../../../connector/store/master-key.js';
import { hasPostgres, postgresUrl } from '../../support/postgres.js';
import { syntheticFacts } from '../store/synthetic-facts.js';

const repoRoot = resolve(import.meta.dirname, '../../..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function outreach(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', 'connector/cli.ts', ...args], { cwd: repoRoot, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// One store kind is enough here (the storage paths run on both in test/connector/store): PostgreSQL starts faster.
const kind = hasPostgres ? 'postgres' : 'pglite';

describe(`outreach keys (${kind})`, () => {
  let home: string;
  let env: Record<string, string>;
  const schema = `keys_cli_${Math.random().toString(36).slice(2, 10)}`;
  const firstKey = generateMasterKey().toString('base64');

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'outreach-keys-cli-'));
    env = { OUTREACH_HOME: home, OUTREACH_MASTER_KEY: firstKey, OUTREACH_LOG_LEVEL: 'warn' };
    if (kind === 'postgres') Object.assign(env, { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema });
    const app = await openApp(loadConfig(env), { log: createLogger({ level: 'silent' }), resealInBackground: false });
    await app.facts.writeFacts([syntheticFacts(1), syntheticFacts(2), syntheticFacts(3)]);
    await app.close();
  });
  afterAll(async () => {
    if (kind === 'postgres') {
      const newKey = join(home, 'new.key');
      const key = existsSync(newKey) ? readFileSync(newKey, 'utf8').trim() : firstKey;
      const app = await openApp(loadConfig({ ...env, OUTREACH_MASTER_KEY: key }), {
        log: createLogger({ level: 'silent' }),
        resealInBackground: false,
      }).catch(() => undefined);
      await app?.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app?.close();
    }
    rmSync(home, { recursive: true, force: true });
  });

  it('rotates, shows the reseal progress, reseals, retires the old version and re-wraps under a new master key', async () => {
    const rotated = await outreach(env, '--json', 'keys', 'rotate', '--no-wait');
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ version: 2, state: 'queued', resealed: 0 });

    const queued = JSON.parse((await outreach(env, '--json', 'keys', 'status')).stdout);
    expect(queued.currentVersion).toBe(2);
    expect(queued.jobs[0]).toMatchObject({ targetVersion: 2, state: 'running' });
    expect(queued.jobs[0].columns.find((c: { table: string }) => c.table === 'patients')).toMatchObject({ remaining: 3, done: false });
    expect(queued.versions.find((v: { version: number; purpose: string }) => v.purpose === 'seal' && v.version === 1).rows).toBe(3);

    const refused = await outreach(env, '--json', 'keys', 'retire', '1');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout).error.code).toBe('CONFLICT');

    const resealed = await outreach(env, '--json', 'keys', 'reseal');
    expect(JSON.parse(resealed.stdout)).toEqual({ resealed: 3 });
    expect((await outreach(env, '--json', 'keys', 'retire', '1')).code).toBe(0);

    const newKeyFile = join(home, 'new.key');
    const rewrapped = await outreach(env, '--json', 'keys', 'rewrap-master', '--out', newKeyFile);
    expect(rewrapped.code).toBe(0);
    expect(JSON.parse(rewrapped.stdout)).toMatchObject({ rewrapped: 2, keyFile: newKeyFile });
    expect(statSync(newKeyFile).mode & 0o777).toBe(0o600);

    // The old key no longer opens the store: a clear error, no stack trace, nothing on stdout.
    const stale = await outreach(env, 'keys', 'status');
    expect(stale.code).toBe(1);
    expect(stale.stdout).toBe('');
    expect(stale.stderr).toMatch(/^error WRONG_MASTER_KEY: /);
    expect(stale.stderr).not.toMatch(/\n\s+at /);

    const withNewKey = { ...env, OUTREACH_MASTER_KEY: readFileSync(newKeyFile, 'utf8').trim() };
    const after = await outreach(withNewKey, 'keys', 'status');
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/current seal key: v2/);
    expect(after.stdout).toMatch(/seal v1 {2}retired/);
    expect(after.stdout).toMatch(/seal v2 {2}current .* 3 sealed values/);
  }, 240_000);
});
