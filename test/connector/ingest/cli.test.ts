// `outreach endpoint ...` and `outreach fhir sync` in process, against a loopback FHIR server and a real (PGlite) app.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openApp, type App } from '../../../connector/app.js';
import type { CliContext } from '../../../connector/cli-context.js';
import { loadConfig } from '../../../connector/config.js';
import { registerIngestCommands } from '../../../connector/ingest/cli.js';
import { silentLog } from '../../../connector/logger.js';
import { startFhirTestServer, type FhirTestServer } from '../../fhir/support/fhir-test-server.js';
import { testClientKey } from '../../fhir/support/smart-client.js';
import { flattenForServer, syntheaBundles } from '../../fhir/support/synthea.js';
import { hasPostgres, postgresUrl } from '../../support/postgres.js';

const home = mkdtempSync(join(tmpdir(), 'outreach-ingest-'));
// PostgreSQL on a fresh schema where it runs (it opens in a fraction of PGlite's WASM start), else the embedded PGlite.
const schema = `t_${randomBytes(6).toString('hex')}`;
const env = {
  OUTREACH_HOME: home,
  OUTREACH_MASTER_KEY: randomBytes(32).toString('base64'),
  OUTREACH_OPEN_FHIR_ENDPOINTS: 'false',
  ...(hasPostgres ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
};
const config = loadConfig(env);
let app: Promise<App> | undefined;
let server: FhirTestServer;
const key = testClientKey('ES384');
const keyFile = join(home, 'client.pem');

/** Runs one command line; returns what it printed (JSON parsed) and the exit code. */
async function run(...argv: string[]): Promise<{ out: any; exitCode: number; progress: number[] }> {
  const program = new Command('outreach').option('--json').exitOverride();
  const printed: string[] = [];
  const progress: number[] = [];
  const ctx: CliContext = {
    config: () => config,
    app: () => (app ??= openApp(config, { log: silentLog, resealInBackground: false })),
    json: () => Boolean(program.opts().json),
    out: (result, human) => void printed.push(program.opts().json ? JSON.stringify(result) : human ? human(result) : JSON.stringify(result)),
    progress: () => ({ update: (done) => void progress.push(done), stop: () => undefined }),
    close: async () => undefined,
  };
  registerIngestCommands(program, ctx);
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (printed.push(String(chunk)), true));
  const errWrite = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (printed.push(String(chunk)), true));
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'outreach', ...argv]);
  } finally {
    write.mockRestore();
    errWrite.mockRestore();
  }
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  const text = printed.join('');
  let out: any = text;
  try {
    out = JSON.parse(text);
  } catch {
    /* human output */
  }
  return { out, exitCode, progress };
}

beforeAll(async () => {
  server = await startFhirTestServer({ resources: flattenForServer(syntheaBundles()) });
  server.registerClient('outreach-test', key.publicJwk, 'ES384');
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
});

afterAll(async () => {
  await server.close();
  if (app) {
    const opened = await app;
    if (hasPostgres) await opened.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await opened.close();
  }
  rmSync(home, { recursive: true, force: true });
});

describe('outreach endpoint and fhir sync', () => {
  it('adds an endpoint from a key file and prints the public JWKS to register', async () => {
    const { out, exitCode } = await run('--json', 'endpoint', 'add', 'test-ehr', '--base-url', server.url, '--client-id', 'outreach-test', '--key-file', keyFile, '--kid', key.kid, '--scope', 'system/*.rs');
    expect(exitCode).toBe(0);
    expect(out.endpoint).toMatchObject({ name: 'test-ehr', auth: 'smart-backend', alg: 'ES384', kid: key.kid, scopes: ['system/*.rs'], hasKey: true });
    expect(out.jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', x: key.publicJwk.x, kid: key.kid });
    expect(JSON.stringify(out)).not.toMatch(/PRIVATE KEY|"d":/);
  });

  it('lists endpoints, in JSON and as text', async () => {
    expect((await run('--json', 'endpoint', 'list')).out.endpoints.map((e: { name: string }) => e.name)).toEqual(['test-ehr']);
    expect((await run('endpoint', 'list')).out).toContain(`test-ehr  ${server.url}  SMART ES384 client outreach-test`);
  });

  it('tests an endpoint: discovery, a verified token, the CapabilityStatement and a Patient search', async () => {
    const { out, exitCode } = await run('--json', 'endpoint', 'test', 'test-ehr');
    expect(exitCode).toBe(0);
    expect(out).toMatchObject({ endpoint: 'test-ehr', tokenUrl: server.tokenUrl, discoveredFrom: '.well-known/smart-configuration', token: { scope: 'system/*.rs' }, fhirVersion: '4.0.1', patientSearch: true });
    expect(out.token.expiresInSeconds).toBeGreaterThan(250);
  });

  it('syncs by bulk export into sealed facts and prints the summary', async () => {
    const { out, exitCode, progress } = await run('--json', 'fhir', 'sync', '--endpoint', 'test-ehr', '--mode', 'bulk', '--system');
    expect(exitCode).toBe(0);
    expect(out).toMatchObject({ endpoint: 'test-ehr', mode: 'bulk', patientsUpdated: 13, quarantined: 0, resources: { Patient: 13, Condition: 45 } });
    expect(progress.length).toBeGreaterThan(0);
    const facts = await (await app!).facts.loadFacts('test-ehr', ['3cbdd43e-7cb5-48b0-a097-47fecc7b4098']);
    expect(facts.get('3cbdd43e-7cb5-48b0-a097-47fecc7b4098')).toMatchObject({ given: 'Myles', pcp: { name: 'Dr. Alexandra Mayert' } });
    const raw = await (await app!).db.query<{ facts: Uint8Array }>('SELECT facts FROM patients');
    expect(raw.map((r) => Buffer.from(r.facts).toString('latin1')).join('')).not.toContain('Myles');
  });

  it('syncs incrementally by search from where the export ended, with a human summary', async () => {
    const { out, exitCode } = await run('fhir', 'sync', '--endpoint', 'test-ehr');
    expect(exitCode).toBe(0);
    expect(out).toMatch(/^synced test-ehr by search since \d{4}-\d{2}-\d{2}T/);
    expect(out).toContain('patients updated 0, consents 0, quarantined 0');
  });

  it('reports an unknown endpoint and bad options with their error codes', async () => {
    expect(await run('--json', 'fhir', 'sync', '--endpoint', 'nope')).toMatchObject({ exitCode: 1, out: { error: { code: 'NOT_FOUND', message: 'FHIR endpoint nope not found' } } });
    expect(await run('--json', 'fhir', 'sync', '--endpoint', 'test-ehr', '--mode', 'fast')).toMatchObject({ exitCode: 1, out: { error: { code: 'BAD_REQUEST' } } });
    expect(await run('--json', 'endpoint', 'add', 'open', '--base-url', server.url, '--auth', 'none')).toMatchObject({ exitCode: 1, out: { error: { code: 'FHIR_ENDPOINT_CONFIG' } } });
  });

  it('names the endpoint and the cause when it is unreachable', async () => {
    const gone = await startFhirTestServer();
    gone.registerClient('c2', key.publicJwk, 'ES384');
    await run('endpoint', 'add', 'gone-ehr', '--base-url', gone.url, '--client-id', 'c2', '--key-file', keyFile);
    await gone.close();
    const { out, exitCode } = await run('endpoint', 'test', 'gone-ehr');
    expect(exitCode).toBe(1);
    expect(out).toMatch(/^error FHIR_ENDPOINT_UNREACHABLE: FHIR endpoint "gone-ehr" \(127\.0\.0\.1:\d+\) is unreachable during the SMART discovery: ECONNREFUSED\n$/);
  });

  // Two processes cannot share one PGlite folder, so the installed binary is exercised against PostgreSQL.
  it.skipIf(!hasPostgres)('is registered in the installed outreach binary', async () => {
    const bin = new URL('../../../connector/bin/outreach.js', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [bin, '--json', 'endpoint', 'list'], { env: { PATH: process.env.PATH, ...env, OUTREACH_LOG_LEVEL: 'silent' } });
    expect(JSON.parse(stdout).endpoints.map((e: { name: string }) => e.name)).toContain('test-ehr');
  });

  it('generates a key pair for a new client registration', async () => {
    const { out } = await run('--json', 'endpoint', 'add', 'new-ehr', '--base-url', 'https://ehr.example.test/fhir', '--client-id', 'c3', '--generate-key', 'RS384');
    expect(out.endpoint).toMatchObject({ name: 'new-ehr', alg: 'RS384', hasKey: true });
    expect(out.jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS384', use: 'sig', kid: out.endpoint.kid });
    expect(await run('--json', 'endpoint', 'remove', 'new-ehr')).toMatchObject({ exitCode: 0, out: { removed: 'new-ehr' } });
  });
});
