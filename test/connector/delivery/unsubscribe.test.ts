// One-click unsubscribe and the consent link, on the real consent registry: the POST revokes marketing and cancels that patient's queued marketing mail; revocations from anywhere cancel too.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { cancelOnRevocation, consentGate, consentGateMany } from '../../../connector/delivery/consent-link.js';
import { createOutbox, type Outbox } from '../../../connector/delivery/outbox.js';
import { createUnsubscribe, createUnsubscribeTokens, type Unsubscribe } from '../../../connector/delivery/unsubscribe.js';
import { openDb, resetDb, type Db } from '../../../connector/store/db.js';
import { createTestCipher } from '../../support/test-cipher.js';

describe('unsubscribe and revocation', () => {
  let db: Db;
  let outbox: Outbox;
  let registry: ConsentRegistry;
  let unsubscribe: Unsubscribe;
  let stopListening: () => void;
  const system = { name: 'unsubscribe', role: 'system' };
  const marketer = { name: 'mia', role: 'admin' };

  beforeAll(async () => {
    db = await openDb();
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await resetDb(db);
    const cipher = createTestCipher();
    registry = new ConsentRegistry({ db, cipher, audit: createAuditLog({ db, cipher }) });
    outbox = createOutbox(db, { messageIdDomain: 'mail.clinic.test' });
    stopListening?.();
    stopListening = cancelOnRevocation(registry, outbox);
    unsubscribe = createUnsubscribe({
      tokens: createUnsubscribeTokens(randomBytes(32)),
      outbox,
      publicUrl: 'https://outreach.clinic.test/',
      recordOptOut: async (claim, token) => {
        await registry.revoke(
          { patientId: claim.patientId, purpose: 'marketing', channel: 'email', source: 'unsubscribe-link', sourceRef: createHash('sha256').update(token).digest('hex').slice(0, 32) },
          system,
        );
      },
    });
    for (const p of ['101', '102']) await registry.grant({ patientId: p, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'mkt-v1' }, marketer);
    await outbox.enqueue([
      ...['spring', 'summer', 'fall'].map((c) => ({ campaignId: c, templateVersion: 1, patientId: '101', purpose: 'marketing', deliveryMode: 'tls-or-escrow' as const })),
      { campaignId: 'flu', templateVersion: 1, patientId: '101', purpose: 'screening-reminder', deliveryMode: 'tls-required' },
      { campaignId: 'spring', templateVersion: 1, patientId: '102', purpose: 'marketing', deliveryMode: 'tls-or-escrow' },
    ]);
  });

  const tokenOf = async (campaign: string, patient: string) => {
    const url = unsubscribe.urlFor((await outbox.byIdempotencyKey(`${campaign}:1:${patient}`))!);
    expect(url).toMatch(/^https:\/\/outreach\.clinic\.test\/u\/[A-Za-z0-9_-]+$/);
    // The URL carries no readable identifier.
    expect(url).not.toContain(patient);
    expect(url).not.toContain(campaign);
    return url.slice(url.lastIndexOf('/') + 1);
  };

  it('one POST records the opt-out and cancels that patient\'s queued marketing, leaving treatment mail and other patients alone', async () => {
    const token = await tokenOf('spring', '101');
    const result = await unsubscribe.handlePost(token, 'List-Unsubscribe=One-Click');
    expect(result.status).toBe(200);
    for (const c of ['spring', 'summer', 'fall']) expect((await outbox.byIdempotencyKey(`${c}:1:101`))!.state).toBe('cancelled');
    expect((await outbox.byIdempotencyKey('flu:1:101'))!.state).toBe('queued');
    expect((await outbox.byIdempotencyKey('spring:1:102'))!.state).toBe('queued');
    const gate = consentGate(registry);
    expect(await gate('101', 'marketing', 'email', new Date())).toMatchObject({ allowed: false, reason: 'revoked' });
    expect(await gate('101', 'screening-reminder', 'email', new Date())).toMatchObject({ allowed: true });
    const history = await registry.history('101');
    expect(history.at(-1)).toMatchObject({ purpose: 'marketing', status: 'revoked', source: 'unsubscribe-link' });
    // A second POST (mail clients retry) changes nothing and does not fail.
    expect((await unsubscribe.handlePost(token, 'List-Unsubscribe=One-Click')).status).toBe(200);
  });

  it('a GET (link scanner, prefetch) never unsubscribes', async () => {
    const token = await tokenOf('spring', '101');
    expect(unsubscribe.handleGet(token)).toEqual({ status: 200, purpose: 'marketing' });
    expect((await outbox.byIdempotencyKey('spring:1:101'))!.state).toBe('queued');
    expect(await consentGate(registry)('101', 'marketing', 'email', new Date())).toMatchObject({ allowed: true, version: 'mkt-v1' });
  });

  it('rejects forged, altered and malformed tokens, and a POST without the one-click body', async () => {
    const token = await tokenOf('spring', '101');
    const altered = token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11);
    await expect(unsubscribe.handlePost(altered, 'List-Unsubscribe=One-Click')).rejects.toMatchObject({ code: 'UNSUBSCRIBE_TOKEN_INVALID' });
    const other = createUnsubscribeTokens(randomBytes(32)).issue({ patientId: '101', campaignId: 'spring', purpose: 'marketing', channel: 'email' });
    await expect(unsubscribe.handlePost(other, 'List-Unsubscribe=One-Click')).rejects.toMatchObject({ code: 'UNSUBSCRIBE_TOKEN_INVALID' });
    await expect(unsubscribe.handlePost('../../etc/passwd', 'List-Unsubscribe=One-Click')).rejects.toMatchObject({ code: 'UNSUBSCRIBE_TOKEN_INVALID' });
    await expect(unsubscribe.handlePost(token, 'unsubscribe=yes')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect((await outbox.byIdempotencyKey('spring:1:101'))!.state).toBe('queued');
  });

  it('cancels queued mail when a revocation or a channel opt-out is recorded anywhere', async () => {
    await registry.revoke({ patientId: '102', purpose: 'marketing', channel: 'email', source: 'crm' }, marketer);
    expect(await outbox.byIdempotencyKey('spring:1:102')).toMatchObject({ state: 'cancelled', cancelReason: 'consent: marketing revoked' });
    await registry.optOut({ patientId: '101', channel: 'email', source: 'crm' }, marketer);
    for (const c of ['spring:1:101', 'flu:1:101']) expect(await outbox.byIdempotencyKey(c)).toMatchObject({ state: 'cancelled', cancelReason: 'consent: channel opted out' });
  });

  it('denies at the gate a purpose the registry does not know', async () => {
    expect(await consentGate(registry)('101', 'newsletter-v2', 'email', new Date())).toMatchObject({ allowed: false });
    expect(await consentGate(registry)('101', 'marketing', 'sms', new Date())).toMatchObject({ allowed: false });
  });

  it('answers a chunk through the batch gate exactly as the one-by-one gate does, in the order asked', async () => {
    await registry.revoke({ patientId: '102', purpose: 'marketing', channel: 'email', source: 'admin' }, marketer);
    await registry.optOut({ patientId: '104', channel: 'email', source: 'admin' }, marketer);
    await registry.grant({ patientId: '104', purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'mkt-v1' }, marketer);
    const asked = [
      { patientId: '101', purpose: 'marketing', channel: 'email' },
      { patientId: '102', purpose: 'marketing', channel: 'email' },
      { patientId: '103', purpose: 'marketing', channel: 'email' },
      { patientId: '104', purpose: 'marketing', channel: 'email' },
      { patientId: '101', purpose: 'screening-reminder', channel: 'email' },
      { patientId: '101', purpose: 'newsletter-v2', channel: 'email' },
      { patientId: '101', purpose: 'marketing', channel: 'sms' },
      { patientId: 'not-a-number', purpose: 'marketing', channel: 'email' },
    ];
    const at = new Date();
    const batch = await consentGateMany(registry)(asked, at);
    const single = await Promise.all(asked.slice(0, 7).map((a) => consentGate(registry)(a.patientId, a.purpose, a.channel, at)));
    expect(batch.slice(0, 7)).toEqual(single);
    expect(batch.map((d) => d.allowed)).toEqual([true, false, false, false, true, false, false, false]);
    expect(batch[7]).toMatchObject({ allowed: false, reason: 'malformed patient id' });
  });
});
