// `outreach salesforce …` against a fake org: connect, status, policy (audited), pull-optouts, push-consent, and errors by code.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import type { Config } from '../../../connector/config.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { silentLog } from '../../../connector/logger.js';
import { registerSalesforceCommands } from '../../../connector/salesforce/cli.js';
import { FactsRepository } from '../../../connector/store/facts-repository.js';
import { phi } from '../../../fhir/phi.js';
import { cliRunner } from '../../support/cli-runner.js';
import { startFakeSalesforce, type FakeSalesforce } from '../../support/fake-salesforce.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';
import { createTestCa } from '../../support/test-ca.js';
import { createTestCipher } from '../../support/test-cipher.js';

describe('outreach salesforce', () => {
  const ca = createTestCa('Fake Salesforce CA');
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cipher = createTestCipher();
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let org: FakeSalesforce;
  let home: string;
  let previousHome: string | undefined;
  let audit: AuditLog;
  let consent: ConsentRegistry;
  let config: Pick<Config, 'salesforce' | 'extraCaFile'>;
  let run: ReturnType<typeof cliRunner>;
  let patientId: number;
  let contactId: string;

  beforeAll(async () => {
    previousHome = process.env.HOME;
    home = mkdtempSync(join(tmpdir(), 'sf-cli-home-'));
    process.env.HOME = home;
    const keyFile = join(home, 'app.key');
    writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const caFile = join(home, 'extra-ca.pem');
    writeFileSync(caFile, ca.cert);
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    audit = createAuditLog({ db: store.db, cipher });
    consent = new ConsentRegistry({ db: store.db, cipher, audit });
    const facts = new FactsRepository(store.db, cipher);
    [patientId] = await facts.upsertFacts([
      { patientId: 'p-1', source: 'ehr', email: phi('cli.patient@example.org'), deceased: false, encounters: [], conditions: [], observations: [], coverage: [], procedures: [], medications: [], appointments: [] },
    ]) as [number];
    org = await startFakeSalesforce({ ca, clientId: 'cli-app', username: 'cli@fakehealth.example', publicKey: keys.publicKey, hasConsentObject: false });
    contactId = org.insert('Contact', { LastName: 'Patient', Email: 'cli.patient@example.org' });
    // The org's CA reaches the sync through config.extraCaFile, as in production.
    config = { salesforce: { loginUrl: org.url, clientId: 'cli-app', username: 'cli@fakehealth.example', jwtKeyFile: keyFile }, extraCaFile: caFile };
    run = cliRunner([registerSalesforceCommands], () => ({ db: store.db, cipher, audit, consent, facts, config: config as Config, log: silentLog }));
  });
  afterAll(async () => {
    await org.close();
    await store.close();
    if (previousHome === undefined) delete process.env.HOME;
    else process.env.HOME = previousHome;
    rmSync(home, { recursive: true, force: true });
  });

  it('reports an unconnected org by its error code before connect', async () => {
    const status = await run(['salesforce', 'status']);
    expect(status.exitCode).toBe(0);
    expect(status.out).toMatchObject({ connected: false, linkedContacts: 0, settings: { matchBy: 'email', bulkThreshold: 200, phiPolicy: { allow: [] } } });
    const pull = await run(['salesforce', 'pull-optouts']);
    expect(pull.exitCode).toBe(1);
    expect(pull.text).toContain('SALESFORCE_NOT_CONFIGURED');
  });

  it('connects, links the Contact and shows the connection', async () => {
    const connect = await run(['salesforce', 'connect', '--bulk-threshold', '500']);
    expect(connect.exitCode).toBe(0);
    expect(connect.out).toMatchObject({ instanceUrl: org.url, orgId: org.orgId, hasConsentObject: false, links: { linked: 1 } });
    const status = await run(['salesforce', 'status'], false);
    expect(status.out).toContain(`connected: yes (${org.url}`);
    expect(status.out).toContain('linked contacts: 1 (match by email)');
    expect(status.out).toContain('bulk above 500 members');
  });

  it('widens the PHI policy only to known fields, and audits the change', async () => {
    const bad = await run(['salesforce', 'policy', '--allow', 'conditions']);
    expect(bad.exitCode).toBe(1);
    expect(bad.text).toContain('BAD_REQUEST');
    const ok = await run(['salesforce', 'policy', '--allow', 'segment-name,purpose']);
    expect(ok.out).toEqual({ allow: ['segment-name', 'purpose'] });
    const rows = [];
    for await (const r of audit.search({ actionPrefix: 'salesforce.policy-change' })) rows.push(r);
    expect(rows).toMatchObject([{ actor: expect.stringMatching(/^cli:/), role: 'admin', entity: 'salesforce-policy/purpose|segment-name' }]);
  });

  it('pulls an opt-out made in Salesforce and writes a local opt-out back', async () => {
    org.update('Contact', contactId, { HasOptedOutOfEmail: true });
    const pull = await run(['salesforce', 'pull-optouts']);
    expect(pull.out).toMatchObject({ contacts: 1, recorded: 1 });
    expect((await consent.isAllowed(patientId, 'appointment-reminder')).reason).toBe('channel-opted-out');
    // Lifted locally (an admin with the patient's request): the Contact follows.
    await consent.optIn({ patientId, channel: 'email', source: 'admin' }, { name: 'ada', role: 'admin' });
    const push = await run(['salesforce', 'push-consent'], false);
    expect(push.out).toBe('1 patients changed: 1 Contacts updated, 0 consent records written, 0 unlinked, 0 without an Individual');
    expect(org.records('Contact')[0]!.HasOptedOutOfEmail).toBe(false);
    // Each command opened its own sync; the authorization saved by `connect` (under HOME/.sfdx) served them all.
    expect(org.tokensIssued).toBe(1);
  });

  it('names a campaign that does not exist by its code', async () => {
    const push = await run(['salesforce', 'push-campaign', '424242']);
    expect(push.exitCode).toBe(1);
    expect(push.text).toContain('NOT_FOUND');
  });
});
