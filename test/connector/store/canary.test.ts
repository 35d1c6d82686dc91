// The canary: distinctive PHI synced from a loopback FHIR server must appear nowhere at rest, in logs or in CLI output.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type App } from '../../../connector/app.js';
import { loadConfig } from '../../../connector/config.js';
import { createLogger } from '../../../connector/logger.js';
import type { Db } from '../../../connector/store/db.js';
import { sealedVersion } from '../../../connector/store/keyring.js';
import { writeConsent } from '../../../fhir/consent.js';
import type { EndpointInput } from '../../../fhir/endpoint.js';
import { endpointRegistry } from '../../../connector/ingest/endpoint-sync.js';
import { startFhirTestServer, type FhirTestServer } from '../../fhir/support/fhir-test-server.js';
import { registeredEndpoint } from '../../fhir/support/smart-client.js';
import { hasPostgres, postgresUrl, storeKinds } from '../../support/postgres.js';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../../..');

/** Values no file, log or table of a fresh install could hold by chance. */
const canary = {
  given: ['Zyxwarbleton', 'Ottolinequa'],
  family: ['Quonsetquill', 'Crumplehornet'],
  emails: ['zyxwarbleton.quonsetquill@canary-mail.example', 'ottoline.crumple@canary-mail.example'],
  birthDates: ['1931-07-29', '1944-02-17'],
  mrns: ['MRN-CANARY-58213', 'MRN-CANARY-77104'],
  cities: ['Vexburgh-on-Tarn'],
  conditions: ['Canarypox hyperglycaemic syndrome', 'Quillfeather nephropathy'],
  // One-digit integer part, matched only with no digit either side: a timestamp's seconds ("…:12.93…") cannot match.
  a1c: ['9.417', '8.623'],
};
const needles = Object.values(canary).flat();
const mr = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };

function canaryResources() {
  const meta = { lastUpdated: '2024-03-01T00:00:00Z' };
  const out: Array<Record<string, unknown> & { resourceType: string; id: string }> = [];
  for (let i = 0; i < 2; i++) {
    const pid = `canary-${i}`;
    out.push({
      resourceType: 'Patient',
      id: pid,
      meta,
      identifier: [{ type: mr, system: 'urn:oid:1.2.36.146.595.217.0.1', value: canary.mrns[i] }],
      name: [{ use: 'official', given: [canary.given[i]], family: canary.family[i] }],
      telecom: [{ system: 'email', value: canary.emails[i] }],
      gender: i ? 'female' : 'male',
      birthDate: canary.birthDates[i],
      address: [{ city: canary.cities[0], state: 'MA', postalCode: '01999', country: 'US' }],
    });
    out.push({
      resourceType: 'Condition',
      id: `canary-cond-${i}`,
      meta,
      subject: { reference: `Patient/${pid}` },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code: `9${i}9021000119104`, display: canary.conditions[i] }], text: canary.conditions[i] },
      onsetDateTime: '2019-04-02',
    });
    out.push({
      resourceType: 'Observation',
      id: `canary-a1c-${i}`,
      meta,
      status: 'final',
      subject: { reference: `Patient/${pid}` },
      code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
      valueQuantity: { value: Number(canary.a1c[i]), unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
      effectiveDateTime: '2024-02-20T09:30:00Z',
    });
  }
  // A HIPAA marketing authorization whose evidence names the patient: the registry keeps it sealed.
  out.push({
    ...writeConsent({
      id: 'canary-consent',
      patient: { reference: 'Patient/canary-0' },
      purpose: 'marketing',
      channel: 'email',
      status: 'active',
      grantedAt: '2024-01-15T00:00:00.000Z',
      textVersion: 'hipaa-mkt-v1',
      recordedAt: '2024-01-15T00:00:00.000Z',
      source: 'signed-form',
    }),
    sourceAttachment: { contentType: 'text/plain', title: `Authorization signed by ${canary.given[0]} ${canary.family[0]}` },
    meta,
  } as unknown as Record<string, unknown> & { resourceType: string; id: string });
  // An invalid resource carrying PHI: it is quarantined, and the quarantine must not keep its values.
  out.push({
    resourceType: 'Observation',
    id: 'canary-bad',
    meta,
    status: 'final',
    subject: { reference: 'Patient/canary-0' },
    code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] },
    valueQuantity: { value: `${canary.given[0]} ${canary.a1c[0]}`, unit: '%' },
    effectiveDateTime: '2024-02-21T09:30:00Z',
  });
  return out;
}

/** A plaintext value written on purpose after the sync: the scans must find it (they can see what is there). */
const control = 'CONTROL-plaintext-Xq9Vt2';

/** Every needle found in `bytes`, as `where: needle`. */
function hitsIn(bytes: Uint8Array, where: string): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lower = Buffer.from(buf.toString('latin1').toLowerCase(), 'latin1');
  const text = lower.toString('latin1');
  const found = (n: string) =>
    /^\d\.\d+$/.test(n) ? new RegExp(`(?<![0-9])${n.replace('.', '\\.')}(?![0-9])`).test(text) : lower.includes(Buffer.from(n.toLowerCase(), 'utf8'));
  return [...needles, control].filter(found).map((n) => `${where}: ${n}`);
}

function scanFolder(dir: string): { files: number; bytes: number; hits: string[] } {
  let files = 0;
  let bytes = 0;
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const content = readFileSync(p);
        files++;
        bytes += content.length;
        hits.push(...hitsIn(content, p.slice(dir.length)));
      }
    }
  };
  walk(dir);
  return { files, bytes, hits };
}

/** Every value of every column of every table in the schema: bytea as raw bytes, everything else as text. */
async function scanTables(db: Db, schema: string): Promise<{ tables: number; values: number; hits: string[] }> {
  const tables = await db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
    [schema],
  );
  let values = 0;
  const hits: string[] = [];
  for (const { table_name } of tables) {
    const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${schema}.${table_name}`);
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        values++;
        const where = `${table_name}.${column}`;
        if (value instanceof Uint8Array) hits.push(...hitsIn(value, where));
        else {
          const text = value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
          hits.push(...hitsIn(Buffer.from(text, 'utf8'), where));
        }
      }
    }
  }
  return { tables: tables.length, values, hits };
}

class Capture extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    done();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

describe.each(storeKinds)('canary on %s', (kind) => {
  let home: string;
  let server: FhirTestServer;
  let schema: string;
  let env: Record<string, string>;
  const logs = new Capture();
  let cliOutput = Buffer.alloc(0);

  function config() {
    return loadConfig(env);
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'outreach-canary-'));
    schema = `canary_${Math.random().toString(36).slice(2, 10)}`;
    env = { OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'trace' };
    if (kind === 'postgres') Object.assign(env, { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema });
    server = await startFhirTestServer({ resources: canaryResources() });
  });
  afterAll(async () => {
    await server?.close();
    if (kind === 'postgres' && hasPostgres) {
      const app = await openApp(config(), { log: createLogger({ level: 'silent' }), resealInBackground: false });
      await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app.close();
    }
    rmSync(home, { recursive: true, force: true });
  });

  async function cli(...args: string[]): Promise<string> {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'connector/cli.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    cliOutput = Buffer.concat([cliOutput, Buffer.from(stdout), Buffer.from(stderr)]);
    return stdout;
  }

  it('syncs the canary patients, seals them, and leaves no plaintext PHI in the store, the logs or the CLI output', async () => {
    const log = createLogger({ level: 'trace', destination: logs });
    let app: App = await openApp(config(), { log, resealInBackground: false });
    try {
      // The endpoint (its SMART private key sealed) is registered the way `outreach endpoint add` does it.
      await endpointRegistry(app).add(registeredEndpoint(server) as unknown as EndpointInput);
    } finally {
      await app.close();
    }

    // `outreach fhir sync` in its own process, with trace logging: the real path from the EHR into the store.
    const summary = JSON.parse(await cli('--json', 'fhir', 'sync', '--endpoint', 'test-ehr')) as { patientsUpdated: number; quarantined: number; consents: number };
    expect(summary).toMatchObject({ patientsUpdated: 2, consents: 1 });
    expect(summary.quarantined).toBeGreaterThanOrEqual(1);

    // Key rotation through the CLI (it reseals every sealed value) and the key status.
    await cli('keys', 'rotate');
    await cli('--json', 'keys', 'status');
    expect(cliOutput.toString()).toContain('"currentVersion": 2');

    app = await openApp(config(), { log, resealInBackground: false });
    try {
      // The canary really is in the store: the look-ups find it and it opens to the plaintext.
      const [id] = await app.facts.findByEmail(canary.emails[0]!.toUpperCase());
      expect(id).toBeDefined();
      const facts = (await app.facts.readFacts([id!])).get(id!)!;
      expect([facts.given, facts.family, facts.birthDate, facts.mrn, facts.city]).toEqual([
        canary.given[0], canary.family[0], canary.birthDates[0], canary.mrns[0], canary.cities[0],
      ]);
      expect(facts.a1c?.value).toBe(9.417);
      expect(facts.conditions[0]?.codes[0]?.display).toBe(canary.conditions[0]);
      expect(await app.facts.findByMrn(canary.mrns[1]!)).toHaveLength(1);
      expect(await app.facts.countQuarantine()).toBeGreaterThanOrEqual(1);
      expect(await app.facts.getSyncState('test-ehr')).toMatchObject({ mode: 'search' });
      expect((await app.consent.history(id!)).length).toBeGreaterThanOrEqual(1);
      const [other] = await app.facts.findByEmail(canary.emails[1]!);
      expect((await app.facts.readFacts([other!])).get(other!)?.family).toBe(canary.family[1]);
      const sealed = await app.db.query<{ facts: Uint8Array }>('SELECT facts FROM patients');
      expect(sealed.map((r) => sealedVersion(r.facts))).toEqual([2, 2]);
      const tables = await scanTables(app.db, kind === 'postgres' ? schema : 'public');
      expect(tables.tables).toBeGreaterThanOrEqual(6);
      expect(tables.values).toBeGreaterThan(20);
      expect(tables.hits).toEqual([]);
      // Positive control: plaintext put in a table is found by both scans.
      await app.db.exec('CREATE TABLE canary_control (note text, raw bytea)');
      await app.db.query('INSERT INTO canary_control VALUES ($1, $2)', [control, Buffer.from(control)]);
      const withControl = await scanTables(app.db, kind === 'postgres' ? schema : 'public');
      expect(withControl.hits.sort()).toEqual([`canary_control.note: ${control}`, `canary_control.raw: ${control}`]);
    } finally {
      await app.close();
    }

    expect(logs.bytes.length).toBeGreaterThan(100);
    expect(hitsIn(logs.bytes, 'log')).toEqual([]);
    // The CLI's stderr holds the sync's trace logs.
    expect(cliOutput.length).toBeGreaterThan(2000);
    expect(hitsIn(cliOutput, 'cli')).toEqual([]);

    if (kind === 'pglite') {
      const folder = scanFolder(home);
      expect(folder.files).toBeGreaterThan(100);
      expect(folder.hits.length).toBeGreaterThan(0);
      expect(folder.hits.filter((h) => !h.endsWith(control))).toEqual([]);
    }
    // Three CLI processes and three PGlite starts: minutes on a loaded 2-core machine.
  }, 240_000);
});
