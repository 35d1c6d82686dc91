// The send pipeline built from the app: DKIM keys sealed in the store and verifiable from the published record, sending that waits for a sender instead of failing, and one-off sends under the approval, consent and TLS rules.
import { createHash, createPublicKey, createVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDnsLookup } from '../../../connector/delivery/dns-client.js';
import { tableConnectTarget } from '../../../connector/delivery/mx-resolver.js';
import { createSendingService, type SendingService } from '../../../connector/sending/sending-service.js';
import { phi } from '../../../fhir/phi.js';
import { startCampaignWorld, type CampaignWorld } from '../campaigns/campaign-world.js';

/** An independent DKIM check (RFC 6376 relaxed/relaxed, rsa-sha256) against the public key of a DNS record value. */
function verifyDkim(raw: string, dnsValue: string): Record<string, string> {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split + 2);
  const body = raw.slice(split + 4);
  const fields = head.split(/\r\n(?=[^ \t])/).filter(Boolean).map((f) => f.replace(/\r\n$/, ''));
  const sigField = fields.find((f) => /^dkim-signature:/i.test(f))!;
  const tags = Object.fromEntries(
    sigField.slice(sigField.indexOf(':') + 1).replace(/\s+/g, '').split(';').filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const relaxBody = body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, '')).join('\r\n').replace(/(\r\n)*$/, '\r\n');
  expect(createHash('sha256').update(relaxBody).digest('base64')).toBe(tags.bh);
  const relax = (f: string) => `${f.slice(0, f.indexOf(':')).trim().toLowerCase()}:${f.slice(f.indexOf(':') + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`;
  const pool = [...fields];
  const signed = tags.h!.split(':').map((name) => {
    for (let i = pool.length - 1; i >= 0; i--) if (pool[i]!.slice(0, pool[i]!.indexOf(':')).trim().toLowerCase() === name) return relax(pool.splice(i, 1)[0]!);
    return '';
  });
  const sigNoB = relax(sigField).replace(/([; ])b=[^;]*$/, '$1b=');
  const p = /p=([A-Za-z0-9+/=]+)/.exec(dnsValue)![1]!;
  const key = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
  expect(createVerify('RSA-SHA256').update(signed.map((h) => `${h}\r\n`).join('') + sigNoB).verify(key, tags.b!, 'base64')).toBe(true);
  return tags;
}

describe('sending service', () => {
  let w: CampaignWorld;
  let clock: Date;
  let lazy: SendingService;
  beforeAll(async () => {
    w = await startCampaignWorld('pglite', ['valid']);
    clock = new Date();
    // A second pipeline over the same store with no sender configured anywhere: it must start and wait.
    lazy = await createSendingService(w.app, {
      dns: createDnsLookup([w.delivery.dns.address]), connectTarget: tableConnectTarget(w.delivery.connectTable), ca: [w.delivery.ca.cert],
      retryDelaysMs: [1000], timeoutMs: 5000, now: () => clock, workerId: 'w-lazy',
    });
  }, 180_000);
  afterAll(async () => {
    await lazy?.close();
    await w?.close();
  });

  it('waits for a sender instead of failing, then signs with the sender domain key sealed in the store', async () => {
    const { app, sessions } = w;
    const [id] = await w.addPatients([{ patientId: 'lazy-1', state: 'S1', email: phi('lazy-1@valid.test') }]);
    await expect(lazy.sender()).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    const template = await lazy.templates.create({ name: 'Refill', content: { subject: 'Your refill', preheader: '', html: '', text: 'Your refill is ready, [first name].' }, actor: 'marketer' });
    const c = await lazy.campaigns.create(sessions.marketer, { name: 'Refill', template: { versionId: template.versionId }, audience: { kind: 'contact', patientId: id! }, purpose: 'refill-reminder', deliveryMode: 'tls-required' });
    await lazy.campaigns.submit(sessions.marketer, c.id);
    await lazy.campaigns.approve(sessions.clinician, c.id);
    await lazy.campaigns.schedule(sessions.marketer, c.id);
    const first = await lazy.drainOnce();
    expect(first).toMatchObject({ claimed: 1, retried: 1, delivered: 0 });
    const [queued] = await app.db.query<{ state: string; last_error: string }>('SELECT state, last_error FROM delivery_outbox WHERE campaign_id = $1', [`campaign/${c.id}`]);
    expect(queued).toMatchObject({ state: 'queued' });
    expect(queued!.last_error).toMatch(/^INVALID_CONFIG/);

    const key = await lazy.dkimKeys.create('clinic.test', 's2', 'cli:operator');
    expect(key.dnsName).toBe('s2._domainkey.clinic.test');
    await expect(lazy.dkimKeys.create('clinic.test', 's2', 'cli:operator')).rejects.toMatchObject({ code: 'CONFLICT' });
    const dump = JSON.stringify(await app.db.query('SELECT * FROM sending_dkim_keys'), (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    expect(dump).not.toMatch(/PRIVATE KEY/);
    await app.senders.add({ address: 'care@clinic.test', displayName: 'Riverside Outreach', dkimSelector: 's2' }, { name: 'admin', role: 'admin' });
    clock = new Date(clock.getTime() + 2000);
    const before = w.delivery.sinks.valid.messages.length;
    expect(await lazy.drainOnce()).toMatchObject({ delivered: 1, campaignsSent: [c.id] });
    const got = w.delivery.sinks.valid.messages.slice(before);
    expect(got.map((m) => [m.to[0], m.secure])).toEqual([['lazy-1@valid.test', true]]);
    expect(verifyDkim(got[0]!.raw.toString('latin1'), key.dnsValue)).toMatchObject({ d: 'clinic.test', s: 's2' });
  });

  it('sends a one-off only under a clinician approval of PHI content, the consent gate and the TLS rules', async () => {
    const { app, sending, sessions } = w;
    const [granted, stranger] = await w.addPatients([
      { patientId: 'one-1', state: 'S2', email: phi('one-1@valid.test') },
      { patientId: 'one-2', state: 'S2', email: phi('one-2@valid.test') },
    ]);
    await app.consent.grant({ patientId: granted!, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-9', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
    const personal = await sending.templates.create({ name: 'Personal note', content: { subject: 'A note', preheader: '', html: '', text: 'Dear [first name], see you soon.' }, actor: 'marketer' });
    const plain = await sending.templates.create({ name: 'Open house', content: { subject: 'Open house', preheader: '', html: '', text: 'Our clinic holds an open house on Saturday.' }, actor: 'marketer' });
    const personalOne = { template: { versionId: personal.versionId }, audience: { kind: 'contact' as const, patientId: granted! }, purpose: 'marketing', deliveryMode: 'tls-required' as const };
    await expect(sending.sendOne(sessions.marketer, personalOne)).rejects.toMatchObject({ code: 'APPROVAL_VOID' });
    await expect(sending.sendOne(sessions.clinician, personalOne)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // The same content approved in a campaign (same purpose and mode) covers one-offs of it.
    const c = await sending.campaigns.create(sessions.marketer, { name: 'Personal', ...personalOne });
    await sending.campaigns.submit(sessions.marketer, c.id);
    await sending.campaigns.approve(sessions.clinician, c.id);
    const queued = await sending.sendOne(sessions.marketer, personalOne);
    expect(queued).toMatchObject({ status: 'queued', reason: null });
    const suppressed = await sending.sendOne(sessions.marketer, { ...personalOne, template: { versionId: plain.versionId }, audience: { kind: 'contact', patientId: stranger! } });
    expect(suppressed).toMatchObject({ status: 'suppressed', reason: 'no-authorization' });
    const before = w.delivery.sinks.valid.messages.length;
    await sending.drainOnce();
    expect(w.delivery.sinks.valid.messages.slice(before).map((m) => m.to[0])).toEqual(['one-1@valid.test']);
    expect(await sending.outbox.get(queued.messageId)).toMatchObject({ state: 'delivered', deliveredAs: 'message', purpose: 'marketing' });
    const trail: Array<[string, string]> = [];
    for await (const r of app.audit.search({ actionPrefix: 'message.' })) trail.push([r.action, r.outcome]);
    expect(trail).toEqual([['message.send', 'success'], ['message.send', 'denied']]);
  });
});
