// Patient lookup, consent, senders and audit through the API on each store: blind-index look-ups, every PHI read audited, nothing in plaintext.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { storeKinds } from '../../support/postgres.js';
import { syntheticFacts } from '../store/synthetic-facts.js';
import { TemplateStore } from '../../../connector/compose/template-store.js';
import { startApiWorld, type ApiWorld } from './api-world.js';
import { outboxCampaignId } from '../../../connector/campaigns/campaign-service.js';

const crmId = '003000000000001AAA';
const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;

describe.each(storeKinds)('patients, consent, senders and audit over HTTP on %s', (kind) => {
  let world: ApiWorld;
  let dns: TestDnsServer;
  let patientId: string;
  const call = (method: string, path: string, init: Parameters<ApiWorld['call']>[2] = {}) => world.call(method, `${apiPrefix}${path}`, init);

  beforeAll(async () => {
    dns = await startDnsServer({ 'mail2026._domainkey.clinic.example': { TXT: ['v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest'] } });
    world = await startApiWorld(kind, { loginThrottle: { maxAttempts: 10_000 } }, { OUTREACH_DNS_SERVERS: dns.address });
    const [first] = await world.app.facts.upsertFacts([syntheticFacts(1), syntheticFacts(2), syntheticFacts(3)]);
    patientId = String(first);
    await world.app.facts.setCrmId(first!, crmId);
  });
  afterAll(async () => {
    await world?.close();
    await dns?.close();
  });

  it('finds a patient by CRM id and by e-mail through the blind index, and audits each look-up', async () => {
    const byCrm = await call('GET', `/patients/lookup?crmId=${crmId}`, { token: world.tokens.marketer });
    expect(byCrm.status).toBe(200);
    expect(byCrm.json).toEqual({
      found: true,
      patientId,
      consent: { marketingAuthorized: false, marketing: { state: 'none', grantedAt: null, expiresAt: null }, emailOptedOut: false, optedOutAt: null },
      lastCampaign: null,
    });
    const byEmail = await call('POST', '/patients/lookup', { token: world.tokens.clinician, body: { email: 'Patient1@Example.org' } });
    expect(byEmail.status).toBe(200);
    expect(byEmail.json.patientId).toBe(patientId);
    const byCrmInBody = await call('POST', '/patients/lookup', { token: world.tokens.marketer, body: { crmId } });
    expect(byCrmInBody.json).toEqual(byCrm.json);
    const missing = await call('GET', `/patients/lookup?crmId=003000000000999AAA`, { token: world.tokens.marketer });
    expect(missing.json).toEqual({ found: false, patientId: null, consent: null, lastCampaign: null });

    const rows = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'patient.lookup' })) rows.push(r);
    expect(rows.map((r) => [r.actor, r.patientBlind === null ? null : 'patient', r.entity])).toEqual([
      ['marketer', 'patient', 'lookup/crm-id'],
      ['clinician', 'patient', 'lookup/email'],
      ['marketer', 'patient', 'lookup/crm-id'],
      ['marketer', null, 'lookup/crm-id'],
    ]);
    expect(rows[0]!.patientBlind).toBe(world.app.audit.patientBlind(patientId));
  });

  it('refuses an e-mail address in the lookup URL with a 400 that says to POST it, and looks nothing up', async () => {
    const before = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'patient.lookup' })) before.push(r);
    for (const path of [`/patients/lookup?email=${encodeURIComponent('Patient1@Example.org')}`, `/patients/lookup?crmId=${crmId}&email=${encodeURIComponent('Patient1@Example.org')}`]) {
      const r = await call('GET', path, { token: world.tokens.marketer });
      expect(r.status).toBe(400);
      expect(r.json.issue[0].details.coding[0].code).toBe('BAD_REQUEST');
      expect(r.json.issue[0].expression).toEqual(['email']);
      expect(r.json.issue[0].details.text).toMatch(/POST \/api\/v1\/patients\/lookup/);
      expect(r.text).not.toMatch(/patient1/i);
    }
    const after = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'patient.lookup' })) after.push(r);
    expect(after).toHaveLength(before.length);
  });

  it('shows the last campaign that reached the patient, from the outbox', async () => {
    const version = await new TemplateStore(world.app.db).create({ name: 'Checkup', content: { subject: 'Time for a checkup', preheader: '', html: '<p>Hi</p>', text: 'Hi' }, actor: 'marketer' });
    const campaign = async (name: string) =>
      (
        await world.app.db.query<{ id: string }>(
          `INSERT INTO campaigns (name, status, purpose, delivery_mode, template_version_id, audience_kind, contact_patient_id, created_by, created_at, updated_at)
           VALUES ($1, 'sent', 'appointment-reminder', 'tls-or-escrow', $2, 'contact', $3, 'marketer', now(), now()) RETURNING id::text AS id`,
          [name, version.versionId, patientId],
        )
      )[0]!.id;
    const spring = await campaign('Spring checkups');
    const autumn = await campaign('Autumn checkups');
    const winter = await campaign('Winter checkups');
    const message = (campaignId: string, state: string, finishedAt: string | null, n: number) =>
      world.app.db.query(
        `INSERT INTO delivery_outbox (idempotency_key, message_id, campaign_id, template_version, patient_id, purpose, delivery_mode, state, next_attempt_at, created_at, updated_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, 'appointment-reminder', 'tls-or-escrow', $6, now(), now(), now(), $7)`,
        [`k-${n}`, `<m${n}@clinic.example>`, outboxCampaignId(campaignId), version.versionId, patientId, state, finishedAt],
      );
    await message(spring, 'delivered', '2026-03-01T10:00:00Z', 1);
    await message(autumn, 'notice_sent', '2026-09-01T10:00:00Z', 2);
    await message(winter, 'queued', null, 3);
    const r = await call('GET', `/patients/lookup?crmId=${crmId}`, { token: world.tokens.marketer });
    expect(r.json.lastCampaign).toEqual({ id: autumn, name: 'Autumn checkups', sentAt: '2026-09-01T10:00:00.000Z' });
  });

  it('records a grant, a revocation and an opt-out, and shows them in the status and the history', async () => {
    const needsVersion = await call('POST', `/consent/${patientId}/grant`, { token: world.tokens.admin, body: { purpose: 'marketing', evidence: 'form-2026-17' } });
    expect(needsVersion.status).toBe(400);
    expect(needsVersion.json.issue[0].expression).toEqual(['textVersion']);

    const granted = await call('POST', `/consent/${patientId}/grant`, {
      token: world.tokens.admin,
      body: { purpose: 'marketing', evidence: 'form-2026-17', textVersion: 'hipaa-mkt-v3', expiresAt: '2099-01-01T00:00:00Z' },
    });
    expect(granted.status).toBe(200);
    expect(granted.json).toMatchObject({ marketingAuthorized: true, marketing: { state: 'active', expiresAt: '2099-01-01T00:00:00.000Z' }, emailOptedOut: false });
    expect((await call('GET', `/patients/lookup?crmId=${crmId}`, { token: world.tokens.marketer })).json.consent.marketingAuthorized).toBe(true);

    const revoked = await call('POST', `/consent/${patientId}/revoke`, { token: world.tokens.admin, body: { purpose: 'marketing', reason: 'Patient called: Ada Okafor asked to stop' } });
    expect(revoked.json).toMatchObject({ marketingAuthorized: false, marketing: { state: 'revoked' } });
    const optedOut = await call('POST', `/consent/${patientId}/revoke`, { token: world.tokens.admin, body: { reason: 'unsubscribe by phone' } });
    expect(optedOut.json).toMatchObject({ marketingAuthorized: false, emailOptedOut: true });
    expect(optedOut.json.optedOutAt).toMatch(/^\d{4}-/);

    const history = await call('GET', `/consent/${patientId}/history`, { token: world.tokens.admin });
    expect(history.json.patientId).toBe(patientId);
    expect(history.json.events.map((e: any) => [e.action, e.purpose, e.source, e.actor])).toEqual([
      ['granted', 'marketing', 'api', 'admin'],
      ['revoked', 'marketing', 'api', 'admin'],
      ['opted-out', null, 'api', 'admin'],
    ]);
    expect((await call('GET', `/consent/${patientId}`, { token: world.tokens.marketer })).json.emailOptedOut).toBe(true);

    // The free-text reason is sealed at rest.
    const raw = await world.app.db.query<{ reason_sealed: Uint8Array | null }>('SELECT reason_sealed FROM authorization_events');
    for (const r of raw) if (r.reason_sealed) expect(Buffer.from(r.reason_sealed).toString('latin1')).not.toContain('Ada Okafor');
  });

  it('answers 404 for a patient that does not exist and records nothing for it', async () => {
    const before = (await world.app.db.query<{ n: string }>('SELECT count(*)::text AS n FROM authorization_events'))[0]!.n;
    for (const [method, path, body] of [
      ['GET', '/consent/987654', undefined],
      ['GET', '/consent/987654/history', undefined],
      ['POST', '/consent/987654/grant', { purpose: 'appointment-reminder', evidence: 'portal' }],
      ['POST', '/consent/not-a-number/revoke', { reason: 'x' }],
    ] as const) {
      const r = await call(method, path, { token: world.tokens.admin, ...(body ? { body } : {}) });
      expect(r.status, path).toBe(404);
      expect(codeOf(r.json)).toBe('NOT_FOUND');
    }
    expect((await world.app.db.query<{ n: string }>('SELECT count(*)::text AS n FROM authorization_events'))[0]!.n).toBe(before);
  });

  it('adds senders, verified when the domain publishes a DKIM key under the selector, and removes them', async () => {
    const verified = await call('POST', '/senders', { token: world.tokens.admin, body: { address: 'News@Clinic.example', displayName: 'Springfield Clinic', dkimSelector: 'mail2026' } });
    expect(verified.status).toBe(201);
    expect(verified.json).toMatchObject({ address: 'news@clinic.example', displayName: 'Springfield Clinic', dkimSelector: 'mail2026', verified: true });
    const unverified = await call('POST', '/senders', { token: world.tokens.admin, body: { address: 'care@clinic.example', dkimSelector: 'nokey' } });
    expect(unverified.json.verified).toBe(false);
    expect((await call('POST', '/senders', { token: world.tokens.admin, body: { address: 'news@clinic.example' } })).status).toBe(409);
    const listed = await call('GET', '/senders', { token: world.tokens.marketer });
    expect(listed.json.senders.map((s: any) => s.address)).toEqual(['care@clinic.example', 'news@clinic.example']);
    expect((await call('DELETE', `/senders/${unverified.json.id}`, { token: world.tokens.admin })).status).toBe(204);
    expect((await call('DELETE', `/senders/${unverified.json.id}`, { token: world.tokens.admin })).status).toBe(404);
    expect((await call('GET', '/senders', { token: world.tokens.admin })).json.senders).toHaveLength(1);

    // A key published after the sender was added verifies it at the next listing.
    const late = await call('POST', '/senders', { token: world.tokens.admin, body: { address: 'late@clinic.example', dkimSelector: 'late2026' } });
    expect(late.json.verified).toBe(false);
    dns.zones.set('late2026._domainkey.clinic.example', { TXT: ['v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlate'] });
    const relisted = await call('GET', '/senders', { token: world.tokens.admin });
    expect(relisted.json.senders.find((s: any) => s.address === 'late@clinic.example').verified).toBe(true);
  });

  it('pages audit entries with filters and verifies the chain', async () => {
    const first = await call('GET', '/audit?action=patient.&limit=2', { token: world.tokens.admin });
    expect(first.status).toBe(200);
    expect(first.json.entries).toHaveLength(2);
    expect(first.json.entries.every((e: any) => e.action === 'patient.lookup')).toBe(true);
    const second = await call('GET', `/audit?action=patient.&limit=2&cursor=${first.json.nextCursor}`, { token: world.tokens.admin });
    expect(second.json.entries.length).toBeGreaterThan(0);
    expect(second.json.entries[0].seq).toBeGreaterThan(first.json.entries[1].seq);
    const byActor = await call('GET', '/audit?actor=clinician&action=patient.', { token: world.tokens.admin });
    expect(byActor.json.entries.map((e: any) => e.actor)).toEqual(['clinician']);
    expect(JSON.stringify(byActor.json)).not.toContain(patientId === '1' ? 'patient/1' : `patient/${patientId}`);
    const verified = await call('POST', '/audit/verify', { token: world.tokens.admin });
    expect(verified.json).toMatchObject({ ok: true, firstBadSeq: null });
    expect(verified.json.entries).toBeGreaterThan(5);
  });
});
