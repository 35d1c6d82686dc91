// The send pipeline built from the app: DKIM keys sealed in the store and verifiable from the published record, sending that waits for a sender instead of failing, one-off sends under the approval, consent and TLS rules, and the loop's bounce listener and signed webhooks.
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../connector/config.js';
import { createDnsLookup } from '../../../connector/delivery/dns-client.js';
import { tableConnectTarget } from '../../../connector/delivery/mx-resolver.js';
import { SIGNATURE_HEADER, verifyWebhook } from '../../../connector/delivery/webhooks.js';
import { createSendingService, type SendingService } from '../../../connector/sending/sending-service.js';
import { phi } from '../../../fhir/phi.js';
import { dkimRecordKey, verifyDkim } from '../../support/dkim-check.js';
import { startCampaignWorld, type CampaignWorld } from '../campaigns/campaign-world.js';

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
    expect(verifyDkim(got[0]!.raw.toString('latin1'), dkimRecordKey(key.dnsValue))).toMatchObject({ d: 'clinic.test', s: 's2' });
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

  it('reads webhook endpoints, their secret and the bounce listener from the configuration', () => {
    const secret = 'whsec_0123456789abcdef0123456789abcdef';
    const c = loadConfig({
      OUTREACH_HOME: '/tmp/outreach-config-only',
      OUTREACH_WEBHOOK_URLS: 'https://crm.example.org/hooks, http://127.0.0.1:9000/hooks',
      OUTREACH_WEBHOOK_SECRET: secret,
      OUTREACH_BOUNCE_PORT: '2525',
      OUTREACH_BOUNCE_HOST: '0.0.0.0',
      OUTREACH_BOUNCE_ADDRESS: 'bounces@mail.clinic.test',
    });
    expect(c).toMatchObject({ webhookUrls: ['https://crm.example.org/hooks', 'http://127.0.0.1:9000/hooks'], webhookSecret: secret, bouncePort: 2525, bounceHost: '0.0.0.0', bounceAddress: 'bounces@mail.clinic.test' });
    expect(loadConfig({ OUTREACH_HOME: '/tmp/outreach-config-only' })).toMatchObject({ webhookUrls: [], bounceHost: '127.0.0.1' });
    expect(loadConfig({ OUTREACH_HOME: '/tmp/outreach-config-only' }).bouncePort).toBeUndefined();
    expect(() => loadConfig({ OUTREACH_HOME: '/tmp/outreach-config-only', OUTREACH_WEBHOOK_URLS: 'https://crm.example.org/hooks' })).toThrow(/WEBHOOK_SECRET/);
    expect(() => loadConfig({ OUTREACH_HOME: '/tmp/outreach-config-only', OUTREACH_WEBHOOK_URLS: 'http://crm.example.org/hooks', OUTREACH_WEBHOOK_SECRET: secret })).toThrow(/https/);
    expect(() => loadConfig({ OUTREACH_HOME: '/tmp/outreach-config-only', OUTREACH_WEBHOOK_URLS: 'https://crm.example.org/hooks', OUTREACH_WEBHOOK_SECRET: 'short' })).toThrow(/^OUTREACH_WEBHOOK_SECRET /);
  });

  it('runs the bounce listener and posts signed, PHI-free webhooks for outcomes, opens, bounces and one-click unsubscribes from its loop', async () => {
    const { app, sessions } = w;
    const secret = 'whsec_loopback_receiver_0123456789abcdef';
    const received: Array<{ type: string; id: string; body: string; signature: string }> = [];
    let arrived: () => void = () => undefined;
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ type: String(req.headers['x-outreach-event-type']), id: String(req.headers['x-outreach-event-id']), body, signature: String(req.headers[SIGNATURE_HEADER]) });
        res.writeHead(204).end();
        arrived();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const eventOf = async (type: string) => {
      // Resolves as soon as the receiver has one (the test's own time-out bounds it).
      for (;;) {
        const hit = received.find((r) => r.type === type);
        if (hit) return { ...hit, event: JSON.parse(hit.body) as { outboxId: string | null; campaignId: string | null; detail: Record<string, unknown> } };
        await new Promise<void>((resolve) => (arrived = resolve));
      }
    };
    const hooked = await createSendingService(app, {
      sender: { address: 'care@clinic.test', displayName: 'Riverside Outreach' },
      dns: createDnsLookup([w.delivery.dns.address]), connectTarget: tableConnectTarget(w.delivery.connectTable), ca: [w.delivery.ca.cert],
      dkim: null, publicUrl: 'https://outreach.clinic.test', retryDelaysMs: [1000], timeoutMs: 5000, workerId: 'w-hooked',
      webhooks: { urls: [`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`], secret },
      bounces: { port: 0 },
      bounceAddress: 'bounces@clinic.test',
    });
    let bouncePort = 0;
    try {
      const [id] = await w.addPatients([{ patientId: 'hook-1', state: 'S3', given: phi('Wilhelmina'), email: phi('hook-1@valid.test') }]);
      await app.consent.grant({ patientId: id!, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-hooks', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
      const template = await hooked.templates.create({
        name: 'Open day', actor: 'marketer',
        content: { subject: 'Open day', preheader: '', html: '<p>Hello [first name], <a href="https://clinic.test/open-day">see the programme</a>.</p>', text: 'Hello [first name], see https://clinic.test/open-day.' },
      });
      const c = await hooked.campaigns.create(sessions.marketer, { name: 'Open day', template: { versionId: template.versionId }, audience: { kind: 'contact', patientId: id! }, purpose: 'marketing', deliveryMode: 'tls-required' });
      await hooked.campaigns.submit(sessions.marketer, c.id);
      await hooked.campaigns.approve(sessions.clinician, c.id);
      await hooked.campaigns.schedule(sessions.marketer, c.id);
      const before = w.delivery.sinks.valid.messages.length;
      hooked.start(20);
      bouncePort = (await hooked.listenForBounces()).port;
      expect(bouncePort).toBeGreaterThan(0);

      const delivered = await eventOf('message.delivered');
      const row = (await hooked.outbox.get(delivered.event.outboxId!))!;
      expect(row).toMatchObject({ state: 'delivered', campaignId: `campaign/${c.id}`, patientId: String(id) });
      expect(delivered.event).toMatchObject({ campaignId: `campaign/${c.id}`, detail: { attempt: 1, deliveredAs: 'message', tlsVerified: true, route: 'verified' } });
      const mail = w.delivery.sinks.valid.messages.slice(before).find((m) => m.to[0] === 'hook-1@valid.test')!;
      // The envelope sender is the bounce address (its domain's MX reaches the listener); the From header stays the sender.
      expect(mail.from).toBe('bounces@clinic.test');
      const parsed = await simpleParser(mail.raw);
      expect(parsed.from?.value[0]?.address).toBe('care@clinic.test');
      expect(parsed.messageId).toBe(row.messageId);

      // A person opens the mail: the pixel's opaque token comes back through tracking.
      const openToken = /\/t\/o\/([A-Za-z0-9_-]{22})/.exec(String(parsed.html))![1]!;
      await hooked.tracking!.handleOpen(openToken, { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15', ip: '203.0.113.7', method: 'GET' });
      expect((await eventOf('message.opened')).event).toMatchObject({ outboxId: row.id, detail: { agent: 'human', machine: false } });

      // The recipient's MX returns a hard bounce (RFC 3464) to the listener the loop started.
      const dsn = [
        'From: Mail Delivery System <MAILER-DAEMON@mx.valid.test>', 'To: care@clinic.test', 'Subject: Undelivered Mail Returned to Sender', 'MIME-Version: 1.0',
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"', '',
        '--b1', 'Content-Type: text/plain', '', 'Your message could not be delivered.', '',
        '--b1', 'Content-Type: message/delivery-status', '', 'Reporting-MTA: dns; mx.valid.test', '',
        'Final-Recipient: rfc822; hook-1@valid.test', 'Action: failed', 'Status: 5.1.1', '',
        '--b1', 'Content-Type: text/rfc822-headers', '', 'From: care@clinic.test', 'To: hook-1@valid.test', `Message-ID: ${row.messageId}`, '',
        '--b1--', '',
      ].join('\r\n');
      const client = nodemailer.createTransport({ host: '127.0.0.1', port: bouncePort, secure: false, ignoreTLS: true });
      await client.sendMail({ envelope: { from: '', to: 'care@clinic.test' }, raw: dsn });
      client.close();
      expect((await eventOf('message.bounced')).event).toMatchObject({ outboxId: row.id, campaignId: `campaign/${c.id}`, detail: { bounce: 'hard', status: '5.1.1' } });
      expect(await hooked.feedback.reasonFor(String(id), 'hook-1@valid.test')).toMatch(/^hard-bounce/);

      // A one-click unsubscribe (recorded as the public page records it) names the last message sent to that patient.
      await app.consent.revoke({ patientId: id!, purpose: 'marketing', channel: 'email', source: 'unsubscribe-link', sourceRef: 'unsubscribe/test-link' }, { name: 'unsubscribe', role: 'system' });
      expect((await eventOf('message.unsubscribed')).event).toMatchObject({ outboxId: row.id, campaignId: `campaign/${c.id}`, detail: { purpose: 'marketing', channel: 'email' } });
    } finally {
      await hooked.close();
      receiver.close();
    }
    // Every event is signed with the secret, carries no address, name or content, and each is posted once.
    for (const r of received) {
      expect(verifyWebhook(secret, r.signature, r.body, new Date())).toBe(true);
      expect(verifyWebhook('another-secret-0123456789abcdef0123', r.signature, r.body, new Date())).toBe(false);
      expect(r.body).not.toMatch(/hook-1|valid\.test|Wilhelmina|Hello|open-day/);
    }
    expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
    // Stopping the loop closed the listener.
    const refused = await new Promise<string>((resolve) => {
      const s = connect(bouncePort, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve('open')));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
