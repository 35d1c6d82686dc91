// Key rotation covers every sealed column: the product writes a value into each, rotate → reseal → retire leaves no value under the retired key in any bytea column, and every module still reads its values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJourneys, type Journeys } from '../../../connector/journeys/open-journeys.js';
import { EndpointRegistry } from '../../../connector/ingest/endpoint-registry.js';
import { ContactLinks } from '../../../connector/salesforce/contact-links.js';
import { SmartSessions } from '../../../connector/smart/app-sessions.js';
import { asBuffer, type Db } from '../../../connector/store/db.js';
import { openKeyring, sealedVersion, type Keyring } from '../../../connector/store/keyring.js';
import { resealStatus, runResealJobs } from '../../../connector/store/reseal-job.js';
import { generateSigningKey } from '../../../fhir/endpoint.js';
import { phi } from '../../../fhir/phi.js';
import { storeKinds } from '../../support/postgres.js';
import { callback, cookiesOf, linkedPractitioner, startLaunch, startSmartWorld, type SmartWorld } from '../smart/smart-world.js';

/** Every column the product seals, with the column its AAD row id comes from (hex: a bytea key). */
const expectedSealed = [
  'authorization_events.evidence_sealed <- id',
  'authorization_events.reason_sealed <- id',
  'campaign_decisions.comment_sealed <- id',
  'campaigns.contact_sealed <- id',
  'escrow_messages.address_sealed <- id',
  'escrow_messages.content_sealed <- id',
  'fhir_endpoints.private_key <- name',
  'journey_enrollments.context_sealed <- id',
  'patients.facts <- id',
  'salesforce_contact_links.contact_sealed <- patient_id',
  'sending_dkim_keys.private_key_sealed <- id',
  'smart_launches.verifier_sealed <- hex(state_hash)',
  'smart_sessions.access_token_sealed <- hex(token_hash)',
  'tracking_tokens.target_sealed <- hex(token_hash)',
];

const sealedHeaderBytes = 32;
const day = 86_400_000;

interface ByteaColumn {
  table: string;
  column: string;
}

/** Every bytea column of every base table in the store's schema. */
async function byteaColumns(db: Db): Promise<ByteaColumn[]> {
  const rows = await db.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
      WHERE c.table_schema = current_schema() AND c.data_type = 'bytea'
      ORDER BY c.table_name, c.column_name`,
  );
  return rows.map((r) => ({ table: r.table_name, column: r.column_name }));
}

/** The AAD row ids a row could use: every column's text form, a bytea column as lower-case hex. */
function rowIdCandidates(row: Record<string, unknown>): Array<{ column: string; rowId: string; hex: boolean }> {
  const out: Array<{ column: string; rowId: string; hex: boolean }> = [];
  for (const [column, v] of Object.entries(row)) {
    if (v instanceof Uint8Array) out.push({ column, rowId: asBuffer(v).toString('hex'), hex: true });
    else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') out.push({ column, rowId: String(v), hex: false });
  }
  return out;
}

const opens = (keyring: Keyring, value: Buffer, table: string, column: string, rowId: string): boolean => {
  try {
    keyring.open(value, { table, column, rowId });
    return true;
  } catch {
    return false;
  }
};

interface SealedValue {
  table: string;
  column: string;
  /** Where the value opened: `<id column>` or `hex(<id column>)`, or undefined when it opened under no row id of its row. */
  source?: string;
  /** With `anywhere`: the table.column whose AAD opened it, when not its own. */
  under?: string;
}

/**
 * Scans every bytea value of every table whose first 4 bytes name `version`. Each is tried under its own table and
 * column with every row id its row could give; with `anywhere`, also under every other bytea table and column (a value
 * sealed for one place but stored in another). Returns the values that open with `keyring`, and those that look sealed
 * (prefix and length) but open nowhere.
 */
async function scanSealed(db: Db, keyring: Keyring, version: number, options: { anywhere?: boolean } = {}): Promise<{ opened: SealedValue[]; unopened: SealedValue[] }> {
  const columns = await byteaColumns(db);
  const opened: SealedValue[] = [];
  const unopened: SealedValue[] = [];
  const byTable = new Map<string, string[]>();
  for (const c of columns) byTable.set(c.table, [...(byTable.get(c.table) ?? []), c.column]);
  for (const [table, cols] of byTable) {
    const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
    for (const row of rows) {
      const ids = rowIdCandidates(row);
      for (const column of cols) {
        const raw = row[column];
        if (!(raw instanceof Uint8Array) || raw.length < sealedHeaderBytes) continue;
        const value = asBuffer(raw);
        if (sealedVersion(value) !== version) continue;
        const own = ids.find((id) => opens(keyring, value, table, column, id.rowId));
        if (own) {
          opened.push({ table, column, source: own.hex ? `hex(${own.column})` : own.column });
          continue;
        }
        const elsewhere = options.anywhere
          ? columns.flatMap((c) => ids.filter((id) => opens(keyring, value, c.table, c.column, id.rowId)).map(() => `${c.table}.${c.column}`))
          : [];
        if (elsewhere.length > 0) opened.push({ table, column, under: elsewhere[0]! });
        else unopened.push({ table, column });
      }
    }
  }
  return { opened, unopened };
}

describe.each(storeKinds)('key rotation covers every sealed column on %s', (kind) => {
  let world: SmartWorld;
  let journeys: Journeys;
  let journeyNow = Date.now();

  beforeAll(async () => {
    world = await startSmartWorld(kind);
  }, 120_000);
  afterAll(async () => {
    journeys?.close();
    await world?.close();
  });

  it('reseals every value the product sealed, retires the old key with none left under it, and every module still reads its values', async () => {
    const { w } = world;
    const { app, sending, sessions } = w;
    const admin = { name: 'admin', role: 'admin' as const };

    // Patients (sealed facts), authorizations with evidence and a revocation reason.
    const appointmentAt = new Date(Date.now() + 10 * day).toISOString();
    const [tls1, plain1, contact1] = await w.addPatients([
      { patientId: 'rot-tls-1', state: 'R1', given: phi('Rotaria'), email: phi('rotaria@valid.test') },
      { patientId: 'rot-plain-1', state: 'R1', given: phi('Plainsby'), email: phi('plainsby@no-starttls.test'), birthDate: phi('1981-03-04') },
      {
        patientId: 'rot-contact-1', state: 'R2', given: phi('Contacta'), email: phi('contacta@valid.test'),
        appointments: [{ id: 'appt-rot-1', status: 'booked', start: appointmentAt, types: [] }],
      },
    ]);
    for (const id of [tls1!, plain1!, contact1!]) {
      await app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-rot', textVersion: 'auth-v1' }, admin);
    }
    await app.consent.grant({ patientId: contact1!, purpose: 'appointment-reminder', channel: 'email', source: 'admin', textVersion: 'auth-v1' }, admin);
    const evidenceText = 'Signed HIPAA authorization of Contacta, witnessed';
    const granted = await app.consent.grant(
      { patientId: contact1!, purpose: 'treatment-reminder', channel: 'email', source: 'signed-form', sourceRef: 'form-rot-2', textVersion: 'auth-v1', evidence: phi(evidenceText) },
      admin,
    );
    const reasonText = 'Contacta asked by phone to stop reminders';
    const revoked = await app.consent.revoke({ patientId: contact1!, purpose: 'treatment-reminder', channel: 'email', source: 'admin', reason: phi(reasonText) }, admin);

    // A campaign with a clinician comment, sent over TLS (tracked click and open) and through escrow for the no-TLS domain.
    await (await app.segmentIndex()).settled();
    const segment = await sending.segments.save({ name: 'R1 patients', definition: { type: 'state', value: 'R1' }, actor: 'marketer' });
    const clickTarget = 'https://clinic.test/book?campaign=rotation';
    const template = await sending.templates.create({
      name: 'Rotation check-in',
      content: {
        subject: 'Time for your check-in',
        preheader: '',
        html: `<p>Hello [first name], <a href="${clickTarget}">book here</a>.</p><p>[unsubscribe link]</p>`,
        text: 'Hello [first name], book with us. [unsubscribe link]',
      },
      actor: 'marketer',
    });
    const campaign = await sending.campaigns.create(sessions.marketer, {
      name: 'Rotation check-in', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-or-escrow',
    });
    await sending.campaigns.submit(sessions.marketer, campaign.id);
    const commentText = 'Fine to send; Rotaria asked for this';
    await sending.campaigns.approve(sessions.clinician, campaign.id, commentText);
    await sending.campaigns.schedule(sessions.marketer, campaign.id);
    expect(await sending.drainOnce()).toMatchObject({ campaignsQueued: 1, delivered: 1, notices: 1 });
    const tlsMail = w.delivery.sinks.valid.messages.find((m) => m.to[0] === 'rotaria@valid.test')!.raw.toString('utf8').replace(/=\r\n/g, '');
    const clickToken = /\/t\/c\/([A-Za-z0-9_-]{22})/.exec(tlsMail)![1]!;
    const notices = w.delivery.sinks['no-starttls'].messages;
    const escrowToken = /\/m\/([A-Za-z0-9_-]{43})/.exec(notices[notices.length - 1]!.raw.toString('utf8'))![1]!;

    // A one-contact campaign chosen by CRM id (sealed on the campaign), and the Salesforce link of that contact.
    const crmId = '003000000000777AAA';
    await app.facts.setCrmId(contact1!, crmId);
    const contactCampaign = await sending.campaigns.create(sessions.marketer, {
      name: 'One contact', template: { versionId: template.versionId }, audience: { kind: 'contact', crmId }, purpose: 'marketing', deliveryMode: 'tls-required',
    });
    const links = new ContactLinks(app.db, app.cipher);
    await links.link([{ patientId: contact1!, contactId: crmId }], 'email', new Date());

    // A FHIR endpoint with its backend-services key, and a DKIM key.
    const endpoints = new EndpointRegistry(app.db, app.cipher);
    const signingKey = generateSigningKey('ES384');
    await endpoints.add({ name: 'rotation-ehr', baseUrl: 'https://fhir.rotation.test/r4', clientId: 'client-rot', privateKey: signingKey.privateKeyPem, kid: signingKey.kid, scopes: ['system/Patient.rs'] });
    await sending.dkimKeys.create('clinic.test', 'rot1', 'admin');

    // SMART: one completed launch (the session seals the EHR's access token) and one left pending (its PKCE verifier).
    const done = await startLaunch(world, linkedPractitioner);
    const completed = await callback(done.callbackUrl, done.launchCookie);
    expect(completed.status).toBe(303);
    const smartToken = cookiesOf(completed)['outreach-smart']!.value;
    const pending = await startLaunch(world, linkedPractitioner);

    // A journey enrolment (its anchor sealed) from the booked appointment.
    journeys = await openJourneys(app, { clock: () => new Date(journeyNow), listen: false, sending: async () => sending });
    const reminderTemplate = await sending.templates.create({ name: 'Visit', content: { subject: 'Your visit', preheader: '', html: '', text: 'We look forward to your visit. [unsubscribe link]' }, actor: 'marketer' });
    const journey = await journeys.service.create(sessions.marketer, {
      name: 'Visit reminder', purpose: 'appointment-reminder', trigger: { kind: 'appointment-booked', hoursBefore: 48 },
      steps: [{ kind: 'send', name: 'visit', templateVersionId: reminderTemplate.versionId }],
    });
    await journeys.service.approve(sessions.clinician, journey.id);

    // Every sealed value the product wrote opens under its own table, column and a column of its own row; each such
    // column is registered for the reseal job with that id column, and every registered column holds a value.
    const registered = (await app.keyring.sealedColumns()).map((c) => `${c.table}.${c.column} <- ${c.rowIdFormat === 'hex' ? `hex(${c.idColumn})` : c.idColumn}`).sort();
    const before = await scanSealed(app.db, app.keyring, 1);
    expect(before.unopened).toEqual([]);
    const written = [...new Set(before.opened.map((v) => `${v.table}.${v.column} <- ${v.source}`))].sort();
    expect(written).toEqual(expectedSealed);
    expect(registered).toEqual(expectedSealed);
    const sealedCount = before.opened.length;

    // Rotate. A second keyring opened now keeps version 1 in memory after it is retired: it finds what would be lost.
    const rotated = await app.keyring.rotate();
    expect(rotated.version).toBe(2);
    const { keyring: witness } = await openKeyring(app.db, app.config);
    // The scanner finds every value while nothing is resealed yet.
    const stale = await scanSealed(app.db, witness, 1, { anywhere: true });
    expect(stale.opened).toHaveLength(sealedCount);

    // Reseal in small batches to the end, then retire version 1 (refused if any registered column still used it).
    const resealed = await runResealJobs(app.db, app.keyring, { batchSize: 3 });
    expect(resealed).toBe(sealedCount);
    const [job] = await resealStatus(app.db, app.keyring, 1);
    expect(job).toMatchObject({ id: rotated.jobId, targetVersion: 2, state: 'done', resealed: sealedCount });
    await app.keyring.retire(1);

    // No bytea value of any table is still under version 1 and opens under any table and column; everything is under 2.
    const left = await scanSealed(app.db, witness, 1, { anywhere: true });
    expect(left.opened).toEqual([]);
    expect(left.unopened).toEqual([]);
    const after = await scanSealed(app.db, app.keyring, 2);
    expect(after.unopened).toEqual([]);
    expect(after.opened).toHaveLength(sealedCount);

    // Every module reads its values through its own API, under version 2 only.
    expect(app.keyring.currentVersion).toBe(2);
    expect(String((await app.facts.readFacts([tls1!])).get(tls1!)?.given)).toBe('Rotaria');
    expect(String(await app.consent.openEvidence(granted))).toBe(evidenceText);
    expect(String(await app.consent.openReason(revoked))).toBe(reasonText);
    expect((await sending.campaigns.get(sessions.marketer, contactCampaign.id)).audience).toMatchObject({ kind: 'contact', crmId });
    expect((await sending.campaigns.readDecisions(campaign.id)).map((d) => d.comment)).toContain(commentText);
    expect((await links.contactsOf([contact1!])).get(contact1!)).toBe(crmId);
    expect((await endpoints.get('rotation-ehr')).privateKey).toBe(signingKey.privateKeyPem);
    expect(await sending.dkimKeys.signer('clinic.test', 'rot1')).toBeDefined();
    expect(await sending.tracking!.handleClick(clickToken, { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' })).toMatchObject({ status: 302, location: clickTarget });
    // The escrow portal opens the address (the code goes to it) and then the content.
    const codesBefore = notices.length;
    await sending.escrow!.sendCode(escrowToken);
    await w.delivery.sinks['no-starttls'].waitFor(codesBefore + 1);
    const codeMail = w.delivery.sinks['no-starttls'].messages[codesBefore]!;
    expect(codeMail.to[0]).toBe('plainsby@no-starttls.test');
    const code = /code is (\d{6})/.exec(codeMail.raw.toString('utf8'))![1]!;
    const reader = await sending.escrow!.verify(escrowToken, code, '1981-03-04');
    expect(String((await sending.escrow!.read(escrowToken, reader.session)).text)).toContain('Hello Plainsby');
    // SMART: the session resolves; the pending launch completes (its verifier opens for the token exchange).
    const smartSessions = new SmartSessions({ db: app.db, cipher: app.cipher, idleMinutes: 15 });
    expect((await smartSessions.resolve(smartToken)).practitioner).toBe(linkedPractitioner);
    expect((await callback(pending.callbackUrl, pending.launchCookie)).status).toBe(303);
    // The journey's step runs when due: its enrolment context (the appointment anchor) opens.
    journeyNow = Date.parse(appointmentAt) - 47 * 3_600_000;
    expect(await journeys.engine.tick()).toMatchObject({ ran: 1, queued: 1 });
  }, 90_000);
});
