// The Salesforce sync seen through the HTTP API: the status route and the patient lookup by the CRM id a link stored.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { salesforceSyncOf } from '../../../connector/salesforce/app-sync.js';
import { phi } from '../../../fhir/phi.js';
import { startApiWorld, type ApiWorld } from '../api/api-world.js';
import { startFakeSalesforce, type FakeSalesforce } from '../../support/fake-salesforce.js';
import { hasPostgres } from '../../support/postgres.js';
import { createTestCa } from '../../support/test-ca.js';

describe('Salesforce through the API', () => {
  const ca = createTestCa('Fake Salesforce CA');
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let home: string;
  let previousHome: string | undefined;
  let org: FakeSalesforce;
  let world: ApiWorld;
  let contactId: string;

  beforeAll(async () => {
    previousHome = process.env.HOME;
    home = mkdtempSync(join(tmpdir(), 'sf-api-home-'));
    process.env.HOME = home;
    const keyFile = join(home, 'app.key');
    writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const caFile = join(home, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    org = await startFakeSalesforce({ ca, clientId: 'api-app', username: 'api@fakehealth.example', publicKey: keys.publicKey });
    contactId = org.insert('Contact', { LastName: 'Lookup', Email: 'lookup.patient@example.org' });
    world = await startApiWorld(hasPostgres ? 'postgres' : 'pglite', {}, {
      SF_LOGIN_URL: org.url,
      SF_CLIENT_ID: 'api-app',
      SF_USERNAME: 'api@fakehealth.example',
      SF_JWT_KEY_FILE: keyFile,
      OUTREACH_EXTRA_CA_FILE: caFile,
    });
    await world.app.facts.upsertFacts([
      { patientId: 'lk-1', source: 'ehr', email: phi('lookup.patient@example.org'), deceased: false, encounters: [], conditions: [], observations: [], coverage: [], procedures: [], medications: [], appointments: [] },
    ]);
  });
  afterAll(async () => {
    await world?.close();
    await org?.close();
    if (previousHome === undefined) delete process.env.HOME;
    else process.env.HOME = previousHome;
    rmSync(home, { recursive: true, force: true });
  });

  it('shows a configured but unconnected org, then the connection after connect', async () => {
    const before = await world.call('GET', '/api/v1/salesforce/status', { token: world.tokens.marketer });
    expect(before.status).toBe(200);
    expect(before.json).toEqual({ connected: false, instanceUrl: null, username: 'api@fakehealth.example', lastPushAt: null, lastOptOutPullAt: null, error: null });

    await salesforceSyncOf(world.app).connect({ name: 'admin', role: 'admin' });
    const after = await world.call('GET', '/api/v1/salesforce/status', { token: world.tokens.admin });
    expect(after.json).toMatchObject({ connected: true, instanceUrl: org.url, error: null });
    expect((await world.call('GET', '/api/v1/salesforce/status', { token: world.tokens.clinician })).status).toBe(403);
  });

  it('finds the linked patient by the Contact id on the record page', async () => {
    const found = await world.call('GET', `/api/v1/patients/lookup?crmId=${contactId}`, { token: world.tokens.marketer });
    expect(found.status).toBe(200);
    expect(found.json).toMatchObject({ found: true });
    const none = await world.call('GET', `/api/v1/patients/lookup?crmId=003000000000999AAA`, { token: world.tokens.marketer });
    expect(none.json).toMatchObject({ found: false });
  });
});
