// Salesforce sync against a fake org over HTTPS: JWT connect through @salesforce/core, campaign push (composite and bulk), consent both ways, the PHI policy, refusals.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { SalesforceSync } from '../../../connector/salesforce/salesforce-sync.js';
import { FactsRepository } from '../../../connector/store/facts-repository.js';
import type { Db } from '../../../connector/store/db.js';
import { phi } from '../../../fhir/phi.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { startFakeSalesforce, type FakeSalesforce } from '../../support/fake-salesforce.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCa } from '../../support/test-ca.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { truncateTables } from '../../support/truncate-tables.js';

const ca = createTestCa('Fake Salesforce CA');
const appKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const clientId = '3MVG9fakeConnectedAppConsumerKey';
const username = 'integration@fakehealth.example';
const admin = { name: 'ada', role: 'admin' };

// Clinical strings the default policy must never let out (the test searches every byte the org received for them).
const condition = 'Type 2 diabetes mellitus';
const labValue = 9.73;
const visitReason = 'Chest pain on exertion';

function facts(i: number): PatientFacts {
  return {
    patientId: `pat-${i}`,
    source: 'demo-ehr',
    given: phi(`Given${i}`),
    family: phi(`Family${i}`),
    birthDate: phi('1961-04-0' + ((i % 9) + 1)),
    email: phi(`patient${i}@example.org`),
    deceased: false,
    encounters: [{ id: `enc-${i}`, date: '2026-01-05', types: [], reasons: [{ system: 'http://snomed.info/sct', code: '29857009', display: visitReason }] }],
    conditions: [{ id: `cond-${i}`, codes: [{ system: 'http://snomed.info/sct', code: '44054006', display: condition }], clinicalStatus: 'active' }],
    observations: [{ id: `obs-${i}`, loinc: '4548-4', value: labValue, unit: '%', date: '2026-01-05' }],
    coverage: [],
    procedures: [],
    medications: [],
    appointments: [],
  };
}

let home: string;
let previousHome: string | undefined;
let keyFile: string;

beforeAll(() => {
  // @salesforce/core keeps authorizations under ~/.sfdx and logs under ~/.sf: the test gets its own HOME.
  previousHome = process.env.HOME;
  home = mkdtempSync(join(tmpdir(), 'sf-home-'));
  process.env.HOME = home;
  keyFile = join(home, 'connected-app.key');
  writeFileSync(keyFile, appKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
});
afterAll(() => {
  if (previousHome === undefined) delete process.env.HOME;
  else process.env.HOME = previousHome;
  rmSync(home, { recursive: true, force: true });
});

describe.each(storeKinds)('Salesforce sync on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let audit: AuditLog;
  let consent: ConsentRegistry;
  let factsRepo: FactsRepository;
  let org: FakeSalesforce;
  let sync: SalesforceSync;
  let patientIds: number[];
  const cipher = createTestCipher();

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());

  const newSync = (config: Partial<Record<'loginUrl' | 'clientId' | 'username' | 'jwtKeyFile', string>> = {}) =>
    new SalesforceSync({
      db,
      cipher,
      audit,
      consent,
      config: { loginUrl: org.url, clientId, username, jwtKeyFile: keyFile, ...config },
      extraCas: [ca.cert],
    });

  /** Patients 1..n in the store and, for the first `contacts` of them, a Contact in the org with the same e-mail. */
  async function seed(n: number, contacts = n): Promise<string[]> {
    patientIds = await factsRepo.upsertFacts(Array.from({ length: n }, (_, i) => facts(i + 1)));
    const ids: string[] = [];
    for (let i = 1; i <= contacts; i++) {
      ids.push(org.insert('Contact', { LastName: `Family${i}`, Email: `patient${i}@example.org`, FHIR_Patient_Id__c: `pat-${i}` }));
    }
    return ids;
  }

  beforeEach(async () => {
    await truncateTables(db, [
      'patients',
      'authorization_events',
      'audit_log',
      'salesforce_connection',
      'salesforce_settings',
      'salesforce_contact_links',
      'salesforce_campaign_members',
      'salesforce_campaigns',
      'templates',
      'segments',
    ]);
    audit = createAuditLog({ db, cipher });
    consent = new ConsentRegistry({ db, cipher, audit });
    factsRepo = new FactsRepository(db, cipher);
    org = await startFakeSalesforce({ ca, clientId, username, publicKey: appKeys.publicKey, hasConsentObject: true, contactFields: ['FHIR_Patient_Id__c'], queryBatchSize: 100 });
    sync = newSync();
  });
  afterEach(async () => org.close());

  it('connects with the JWT bearer flow over verified TLS, stores the connection and links Contacts by e-mail', async () => {
    const contactIds = await seed(3, 2);
    const report = await sync.connect(admin);
    expect(report).toMatchObject({ instanceUrl: org.url, orgId: org.orgId, apiVersion: '60.0', hasConsentObject: true });
    expect(report.links).toMatchObject({ contacts: 2, linked: 2, unmatched: 0, ambiguous: 0 });
    // The org saw a JWT bearer grant it verified against the connected app's key, then the calls @salesforce/core makes.
    const token = org.requests.find((r) => r.path === '/services/oauth2/token')!;
    expect(new URLSearchParams(token.body).get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    expect(org.tokensIssued).toBe(1);
    const calls = org.requests.map((r) => `${r.method} ${r.path}${r.query.get('q') ? ` ${r.query.get('q')}` : ''}`);
    expect(calls.slice(0, 4)).toEqual([
      'POST /services/oauth2/token',
      'GET /services/data/v51.0/query SELECT Id FROM ScratchOrgInfo limit 1',
      'GET /services/data',
      'GET /services/data/v60.0/query SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization',
    ]);
    expect(calls).toContain('GET /services/data/v60.0/sobjects/Contact/describe');
    expect(calls).toContain('GET /services/data/v60.0/sobjects/ContactPointTypeConsent/describe');
    expect(org.requests.every((r) => r.path === '/services/oauth2/token' || r.path.startsWith('/services/data'))).toBe(true);
    // The authorization landed in the test's HOME, not the user's.
    expect(readdirSync(join(home, '.sfdx'))).toContain(`${username}.json`);
    // The API's lookup by CRM id finds the linked patients; the unlinked third patient has none.
    expect(await factsRepo.findByCrmId(contactIds[0]!)).toEqual([patientIds[0]]);
    expect(await factsRepo.findByCrmId(contactIds[1]!)).toEqual([patientIds[1]]);
    expect(await sync.status()).toEqual({ connected: true, instanceUrl: org.url, username, lastPushAt: null, lastOptOutPullAt: null, error: null });
    const actions = [];
    for await (const r of audit.search({ actionPrefix: 'salesforce.' })) actions.push(r.action);
    expect(actions).toEqual(['salesforce.connect']);
  });

  it('links Contacts by a FHIR Patient id field when configured to', async () => {
    await seed(2);
    org.insert('Contact', { LastName: 'Stranger', Email: 'nobody@example.org', FHIR_Patient_Id__c: 'Patient/pat-404' });
    await sync.updateSettings({ matchBy: 'external-id', externalIdField: 'FHIR_Patient_Id__c' }, admin);
    const report = await sync.connect(admin);
    expect(report.links).toMatchObject({ contacts: 3, linked: 2, unmatched: 1 });
    expect(org.requests.some((r) => r.path.endsWith('/query') && /FHIR_Patient_Id__c != null/.test(r.query.get('q') ?? ''))).toBe(true);
  });

  it('pushes a small campaign through REST composite with only the name and the membership', async () => {
    await seed(4, 3);
    await sync.connect(admin);
    const report = await sync.pushCampaign({ key: 'campaign/7', name: 'Spring check-in', segmentName: 'A1c over 9 with diabetes', purpose: 'marketing', memberPatientIds: patientIds }, admin);
    expect(report).toMatchObject({ via: 'composite', members: 4, added: 3, unlinked: 1, alreadyPresent: 0, failed: {}, fieldsSent: ['Name', 'IsActive'] });
    const [campaign] = org.records('Campaign');
    expect(campaign).toMatchObject({ Name: 'Spring check-in', IsActive: true });
    expect(campaign!.Description).toBeUndefined();
    const members = org.records('CampaignMember');
    expect(members).toHaveLength(3);
    expect(members.every((m) => m.CampaignId === campaign!.Id && m.Status === 'Sent')).toBe(true);
    const [created] = org.bodies('POST', /\/sobjects\/Campaign$/).map((b) => JSON.parse(b));
    expect(Object.keys(created).sort()).toEqual(['IsActive', 'Name']);
    const composite = org.bodies('POST', /\/composite\/sobjects$/).map((b) => JSON.parse(b));
    expect(composite).toHaveLength(1);
    for (const r of composite[0].records) expect(Object.keys(r).sort()).toEqual(['CampaignId', 'ContactId', 'Status', 'attributes']);

    // A re-push sends only members not there yet, and updates the same Campaign.
    org.insert('Contact', { LastName: 'Family4', Email: 'patient4@example.org' });
    const again = await sync.pushCampaign({ key: 'campaign/7', name: 'Spring check-in', purpose: 'marketing', memberPatientIds: patientIds }, admin);
    expect(again).toMatchObject({ salesforceCampaignId: campaign!.Id, added: 1, alreadyPresent: 3, unlinked: 0 });
    expect(org.records('Campaign')).toHaveLength(1);
    expect(org.records('CampaignMember')).toHaveLength(4);
    const disclosed = [];
    for await (const r of audit.search({ actionPrefix: 'salesforce.disclose' })) disclosed.push(r);
    expect(disclosed).toHaveLength(4);
    expect(disclosed.every((r) => r.purpose === 'marketing' && r.entity === 'salesforce/campaign/7' && r.patientBlind)).toBe(true);
    expect((await sync.status()).lastPushAt).not.toBeNull();
  });

  it('pushes an approved campaign from the store: its name and the audience frozen at approval', async () => {
    await seed(4);
    await sync.connect(admin);
    const one = async <T = { id: string }>(sql: string, params: unknown[]) => (await db.query<T>(sql, params))[0]!;
    const template = await one(`INSERT INTO templates (name, created_by) VALUES ('t', 'ada') RETURNING id`, []);
    const version = await one(
      `INSERT INTO template_versions (template_id, version, subject, preheader, html, text_body, content_hash, merge_tags, phi_class, delivery_modes, created_by)
       VALUES ($1, 1, 's', 'p', '<p>h</p>', 'h', $2, '[]', 'none', '["escrow"]', 'ada') RETURNING id`,
      [template.id, 'a'.repeat(64)],
    );
    const segment = await one(`INSERT INTO segments (name, created_by) VALUES ('A1c over 9', 'ada') RETURNING id`, []);
    const segmentVersion = await one(`INSERT INTO segment_versions (segment_id, version, definition, definition_hash, created_by) VALUES ($1, 1, '{}', $2, 'ada') RETURNING id`, [segment.id, 'b'.repeat(64)]);
    const snapshot = await one(`INSERT INTO segment_snapshots (segment_version_id, definition_hash, as_of, member_count, taken_by) VALUES ($1, $2, '2026-11-01', 2, 'cleo') RETURNING id`, [segmentVersion.id, 'b'.repeat(64)]);
    await db.query('INSERT INTO segment_snapshot_members (snapshot_id, patient_id) VALUES ($1, $2), ($1, $3)', [snapshot.id, patientIds[1], patientIds[3]]);
    const insertCampaign = (status: string, snapshotId: string | null) =>
      one(
        `INSERT INTO campaigns (name, status, purpose, delivery_mode, template_version_id, audience_kind, segment_version_id, snapshot_id, created_by, created_at, updated_at)
         VALUES ('November recall', $1, 'screening-reminder', 'escrow', $2, 'segment', $3, $4, 'mia', now(), now()) RETURNING id`,
        [status, version.id, segmentVersion.id, snapshotId],
      );
    const approved = await insertCampaign('approved', snapshot.id);
    const report = await sync.pushStoredCampaign(String(approved.id), admin);
    expect(report).toMatchObject({ campaignKey: `campaign/${approved.id}`, via: 'composite', members: 2, added: 2, fieldsSent: ['Name', 'IsActive'] });
    const contactOf = new Map((await sync.links.contactsOf(patientIds)).entries());
    expect(new Set(org.records('CampaignMember').map((m) => m.ContactId))).toEqual(new Set([contactOf.get(patientIds[1]!), contactOf.get(patientIds[3]!)]));
    expect(org.records('Campaign')[0]).toMatchObject({ Name: 'November recall' });

    const draft = await insertCampaign('draft', null);
    await expect(sync.pushStoredCampaign(String(draft.id), admin)).rejects.toMatchObject({ code: 'CAMPAIGN_STATE' });
    await expect(sync.pushStoredCampaign('999999', admin)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('pushes a large campaign through a Bulk API 2.0 ingest job and counts members already there', async () => {
    const contactIds = await seed(260);
    await sync.updateSettings({ bulkPollMs: 5 }, admin);
    await sync.connect(admin);
    // Someone already added one Contact in Salesforce: Salesforce answers DUPLICATE_VALUE for that row.
    const campaignKey = 'campaign/bulk-1';
    const first = await sync.pushCampaign({ key: campaignKey, name: 'Flu shots', memberPatientIds: patientIds.slice(0, 1) }, admin);
    expect(first.via).toBe('composite');
    await db.query('DELETE FROM salesforce_campaign_members');
    const report = await sync.pushCampaign({ key: campaignKey, name: 'Flu shots', memberPatientIds: patientIds }, admin);
    expect(report).toMatchObject({ via: 'bulk', members: 260, added: 259, alreadyPresent: 1, unlinked: 0, failed: {} });
    expect(report.bulkJobIds).toHaveLength(1);
    const jobPath = `/services/data/v60.0/jobs/ingest/${report.bulkJobIds[0]}`;
    const flow = org.requests.filter((r) => r.path.startsWith('/services/data/v60.0/jobs/ingest')).map((r) => `${r.method} ${r.path}`);
    expect(flow[0]).toBe('POST /services/data/v60.0/jobs/ingest');
    expect(flow).toContain(`PUT ${jobPath}/batches`);
    expect(flow).toContain(`PATCH ${jobPath}`);
    expect(flow.filter((f) => f === `GET ${jobPath}`).length).toBeGreaterThanOrEqual(2);
    expect(flow).toContain(`GET ${jobPath}/successfulResults/`);
    expect(flow).toContain(`GET ${jobPath}/failedResults/`);
    const job = JSON.parse(org.bodies('POST', /\/jobs\/ingest$/)[0]!);
    expect(job).toMatchObject({ object: 'CampaignMember', operation: 'insert', contentType: 'CSV', lineEnding: 'LF' });
    const [csv] = org.bodies('PUT', /\/batches$/);
    const lines = csv!.trim().split('\n');
    expect(lines[0]).toBe('CampaignId,ContactId,Status');
    expect(lines).toHaveLength(261);
    expect(JSON.parse(org.bodies('PATCH', new RegExp(`${jobPath}$`))[0]!)).toEqual({ state: 'UploadComplete' });
    expect(new Set(org.records('CampaignMember').map((m) => m.ContactId))).toEqual(new Set(contactIds));
    expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM salesforce_campaign_members'))[0]!.n)).toBe(260);
  });

  it('pulls opt-outs made in Salesforce by SystemModstamp watermark into the registry as crm opt-outs', async () => {
    const contactIds = await seed(3);
    const t0 = new Date('2026-11-01T10:00:00.000Z');
    org.setNow(t0);
    await sync.connect(admin);
    org.setNow(new Date('2026-11-02T09:30:15.250Z'));
    org.update('Contact', contactIds[0]!, { HasOptedOutOfEmail: true });
    const first = await sync.pullOptOuts();
    expect(first).toMatchObject({ contacts: 1, recorded: 1, alreadyOptedOut: 0, unlinked: 0 });
    expect(first.watermark?.toISOString()).toBe('2026-11-02T09:30:15.250Z');
    expect(await consent.isAllowed(patientIds[0]!, 'appointment-reminder')).toMatchObject({ allowed: false, reason: 'channel-opted-out' });
    const [row] = (await consent.history(patientIds[0]!)).filter((r) => r.purpose === '*');
    expect(row).toMatchObject({ status: 'revoked', source: 'crm', sourceRef: `salesforce/Contact/${contactIds[0]}`, recordedBy: 'salesforce-sync' });

    // Nothing new: the next query starts at the watermark and records nothing twice.
    const again = await sync.pullOptOuts();
    expect(again).toMatchObject({ recorded: 0 });
    const queries = org.requests.filter((r) => r.path.endsWith('/query')).map((r) => r.query.get('q') ?? '').filter((q) => q.includes('HasOptedOutOfEmail = true'));
    expect(queries[0]).not.toMatch(/SystemModstamp >=/);
    expect(queries[1]).toContain('SystemModstamp >= 2026-11-02T09:30:15Z');

    org.setNow(new Date('2026-11-03T08:00:00.000Z'));
    org.update('Contact', contactIds[2]!, { HasOptedOutOfEmail: true });
    // The window starts at the watermark's second, so the earlier Contact is read again and recognised, not recorded twice.
    const third = await sync.pullOptOuts();
    expect(third).toMatchObject({ contacts: 2, recorded: 1, alreadyOptedOut: 1 });
    expect((await consent.isAllowed(patientIds[2]!, 'refill-reminder')).allowed).toBe(false);
    expect((await consent.isAllowed(patientIds[1]!, 'refill-reminder')).allowed).toBe(true);
    expect((await sync.status()).lastOptOutPullAt).not.toBeNull();
  });

  it('writes consent back to HasOptedOutOfEmail and ContactPointTypeConsent, without echoing pulled opt-outs', async () => {
    const contactIds = await seed(3);
    const individual = org.insert('Individual', { LastName: 'Family1' });
    const individual2 = org.insert('Individual', { LastName: 'Family2' });
    org.update('Contact', contactIds[0]!, { IndividualId: individual });
    org.update('Contact', contactIds[1]!, { IndividualId: individual2 });
    await sync.connect(admin);
    await consent.optOut({ patientId: patientIds[0]!, channel: 'email', source: 'unsubscribe-link', sourceRef: 'token-1' }, { name: 'unsubscribe', role: 'system' });
    await consent.grant({ patientId: patientIds[1]!, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'hipaa-mkt-v3' }, admin);
    const report = await sync.pushConsent(admin);
    // Only the patient with a channel-wide record has its flag written; the marketing grant goes to the consent record.
    expect(report).toMatchObject({ patients: 2, contactsUpdated: 1, consentRecordsWritten: 2, withoutIndividual: 0, unlinked: 0, failed: {} });
    const contact = (id: string) => org.records('Contact').find((c) => c.Id === id)!;
    expect(contact(contactIds[0]!).HasOptedOutOfEmail).toBe(true);
    expect(contact(contactIds[1]!).HasOptedOutOfEmail).toBe(false);
    const flagWrites = org.bodies('PATCH', /\/composite\/sobjects$/).flatMap((b) => JSON.parse(b).records).filter((r: { attributes: { type: string } }) => r.attributes.type === 'Contact');
    expect(flagWrites).toEqual([{ attributes: { type: 'Contact' }, Id: contactIds[0], HasOptedOutOfEmail: true }]);
    const consents = org.records('ContactPointTypeConsent');
    expect(consents.map((c) => [c.PartyId, c.PrivacyConsentStatus, c.ContactPointType, c.CaptureSource]).sort()).toEqual(
      [
        [individual, 'OptOut', 'Email', 'Secure Outreach'],
        [individual2, 'OptIn', 'Email', 'Secure Outreach'],
      ].sort(),
    );
    // Nothing changed since: nothing is written.
    const before = org.requests.length;
    expect(await sync.pushConsent(admin)).toMatchObject({ patients: 0 });
    expect(org.requests.slice(before).some((r) => r.path.endsWith('/composite/sobjects'))).toBe(false);

    // An opt-out pulled from Salesforce is not written back to it; a later revocation updates the existing record.
    org.update('Contact', contactIds[2]!, { HasOptedOutOfEmail: true });
    await sync.pullOptOuts();
    await consent.revoke({ patientId: patientIds[1]!, purpose: 'marketing', channel: 'email', source: 'admin' }, admin);
    const third = await sync.pushConsent(admin);
    expect(third).toMatchObject({ patients: 1, contactsUpdated: 0, consentRecordsWritten: 1 });
    expect(org.records('ContactPointTypeConsent')).toHaveLength(2);
    expect(org.records('ContactPointTypeConsent').find((c) => c.PartyId === individual2)!.PrivacyConsentStatus).toBe('OptOut');

    // Our own OptOut record (a marketing revocation) is not read back as a channel opt-out; one made in Salesforce is.
    expect(await sync.pullOptOuts()).toMatchObject({ recorded: 0 });
    expect((await consent.isAllowed(patientIds[1]!, 'appointment-reminder')).allowed).toBe(true);
    org.insert('ContactPointTypeConsent', { Name: 'Email', PartyId: individual2, ContactPointType: 'Email', PrivacyConsentStatus: 'OptOut', CaptureSource: 'Web form' });
    expect(await sync.pullOptOuts()).toMatchObject({ recorded: 1 });
    expect((await consent.isAllowed(patientIds[1]!, 'appointment-reminder')).reason).toBe('channel-opted-out');
  });

  it('never overwrites an opt-out made in Salesforce that was not pulled yet', async () => {
    const contactIds = await seed(1);
    await sync.connect(admin);
    org.update('Contact', contactIds[0]!, { HasOptedOutOfEmail: true });
    await consent.grant({ patientId: patientIds[0]!, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'hipaa-mkt-v3' }, admin);
    await sync.pushConsent(admin);
    expect(org.records('Contact')[0]!.HasOptedOutOfEmail).toBe(true);
    expect((await consent.isAllowed(patientIds[0]!, 'marketing')).reason).toBe('channel-opted-out');
  });

  it('skips ContactPointTypeConsent where the org does not have it', async () => {
    await org.close();
    org = await startFakeSalesforce({ ca, clientId, username, publicKey: appKeys.publicKey, hasConsentObject: false, contactFields: ['FHIR_Patient_Id__c'] });
    sync = newSync();
    await seed(1);
    expect((await sync.connect(admin)).hasConsentObject).toBe(false);
    await consent.optOut({ patientId: patientIds[0]!, channel: 'email', source: 'admin' }, admin);
    expect(await sync.pushConsent(admin)).toMatchObject({ contactsUpdated: 1, consentRecordsWritten: 0 });
    expect(org.requests.some((r) => r.path.includes('ContactPointTypeConsent') && r.method !== 'GET')).toBe(false);
  });

  it('sends no condition, lab value, visit reason or demographic by default, and audits a widened policy', async () => {
    await seed(5);
    await sync.connect(admin);
    const campaign = { key: 'campaign/9', name: 'Screening reminders', segmentName: 'Diabetics due for A1c', purpose: 'screening-reminder', memberPatientIds: patientIds };
    await sync.pushCampaign(campaign, admin);
    await consent.optOut({ patientId: patientIds[0]!, channel: 'email', source: 'admin' }, admin);
    await sync.pushConsent(admin);
    const sent = () => org.requests.filter((r) => r.method !== 'GET').map((r) => r.body).join('\n');
    for (const secret of [condition, '44054006', String(labValue), '4548-4', visitReason, '29857009', '1961-04', 'Given1', 'Family1', 'patient1@example.org', 'pat-1', 'Diabetics due for A1c', 'screening-reminder']) {
      expect(sent()).not.toContain(secret);
    }

    await sync.setPhiPolicy({ allow: ['segment-name'] }, admin);
    const widened = await sync.pushCampaign(campaign, admin);
    expect(widened.fieldsSent).toEqual(['Name', 'IsActive', 'Description']);
    expect(org.records('Campaign')[0]!.Description).toBe('Segment: Diabetics due for A1c');
    for (const secret of [condition, String(labValue), visitReason, 'patient1@example.org']) expect(sent()).not.toContain(secret);
    const changes = [];
    for await (const r of audit.search({ actionPrefix: 'salesforce.policy-change' })) changes.push(r);
    expect(changes).toMatchObject([{ actor: 'ada', role: 'admin', entity: 'salesforce-policy/segment-name' }]);

    // A label that names a person is stopped before anything is sent.
    const before = org.requests.length;
    await expect(sync.pushCampaign({ ...campaign, key: 'campaign/10', name: 'Call back jane.doe@example.org' }, admin)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      details: { field: 'Name' },
    });
    expect(org.requests.slice(before).some((r) => r.method !== 'GET')).toBe(false);

    // Narrowing it again clears the field in Salesforce on the next push.
    await sync.setPhiPolicy({ allow: [] }, admin);
    await sync.pushCampaign(campaign, admin);
    expect(org.records('Campaign')[0]!.Description).toBeNull();
    const all = [];
    for await (const r of audit.search({ actionPrefix: 'salesforce.policy-change' })) all.push(r.entity);
    expect(all).toEqual(['salesforce-policy/segment-name', 'salesforce-policy/default']);
  });

  it('signs in again with the JWT bearer flow when the org expired the session', async () => {
    await seed(2);
    await sync.connect(admin);
    org.expireTokens();
    const report = await sync.pushCampaign({ key: 'campaign/5', name: 'After timeout', memberPatientIds: patientIds }, admin);
    expect(report.added).toBe(2);
    expect(org.tokensIssued).toBe(2);
    expect(org.requests.filter((r) => r.path === '/services/oauth2/token')).toHaveLength(2);
  });

  it('fails with SALESFORCE_ERROR naming Salesforce’s code, without its message text, and shows it in the status', async () => {
    await seed(2);
    await sync.connect(admin);
    org.refuse({ method: 'POST', path: /\/sobjects\/Campaign$/, status: 403, errorCode: 'INSUFFICIENT_ACCESS_OR_READONLY', message: 'Given1 Family1 cannot be shared', times: 1 });
    const err = await sync.pushCampaign({ key: 'campaign/3', name: 'Refused', memberPatientIds: patientIds }, admin).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SALESFORCE_ERROR', status: 502, details: { salesforceCode: 'INSUFFICIENT_ACCESS_OR_READONLY' } });
    expect((err as Error).message).toContain('INSUFFICIENT_ACCESS_OR_READONLY');
    expect((err as Error).message).not.toContain('Given1');
    expect(await sync.status()).toMatchObject({ connected: true, error: 'INSUFFICIENT_ACCESS_OR_READONLY' });

    // Every member refused: the push fails with the members' code, not silently.
    org.refuse({ method: 'POST', path: /\/composite\/sobjects$/, status: 400, errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'TotalRequests Limit exceeded.' });
    await expect(sync.pushCampaign({ key: 'campaign/4', name: 'Limited', memberPatientIds: patientIds }, admin)).rejects.toMatchObject({
      code: 'SALESFORCE_ERROR',
      details: { salesforceCode: 'REQUEST_LIMIT_EXCEEDED' },
    });
  });

  it('refuses to sync until Salesforce is configured and connected', async () => {
    const unconfigured = newSync({ loginUrl: '', clientId: '' });
    expect(await unconfigured.status()).toMatchObject({ connected: false, error: 'SALESFORCE_NOT_CONFIGURED' });
    await expect(unconfigured.connect(admin)).rejects.toMatchObject({ code: 'SALESFORCE_NOT_CONFIGURED' });
    await expect(sync.pullOptOuts()).rejects.toMatchObject({ code: 'SALESFORCE_NOT_CONFIGURED' });
    await expect(newSync({ loginUrl: 'http://127.0.0.1:1' }).connect(admin)).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    expect(existsSync(keyFile)).toBe(true);
  });
});
