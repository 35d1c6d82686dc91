// Tracking and webhooks: opaque tokens carry no PHI, clicks redirect to server-side targets, machine prefetch is counted apart, webhooks are signed, retried and replayable.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOutbox, type Outbox, type OutboxMessage } from '../../../connector/delivery/outbox.js';
import { classifyAgent, createTracking, type Tracking } from '../../../connector/delivery/tracking.js';
import { createWebhooks, SIGNATURE_HEADER, signWebhook, verifyWebhook } from '../../../connector/delivery/webhooks.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { createTestCipher } from '../../support/test-cipher.js';

// One embedded store for the whole file (its cold start dominates).
let db: Db;
beforeAll(async () => {
  db = await openDb();
});
afterAll(async () => db.close());

describe('tracking', () => {
  let outbox: Outbox;
  let tracking: Tracking;
  let messages: OutboxMessage[];
  beforeEach(async () => {
    await db.exec('TRUNCATE delivery_outbox, delivery_attempts, tracking_tokens, tracking_events, webhook_deliveries RESTART IDENTITY CASCADE');
    outbox = createOutbox(db, { messageIdDomain: 'clinic.test' });
    tracking = createTracking({ db, cipher: createTestCipher(), publicUrl: 'https://t.clinic.test/' });
    await outbox.enqueue(['1', '2'].map((p) => ({ campaignId: 'spring', templateVersion: 1, patientId: p, purpose: 'marketing', deliveryMode: 'tls-or-escrow' as const })));
    messages = await outbox.claim('w', 10, 60_000);
  });

  const html = '<html><body><p>Dear Ana Lopez, book your visit:</p><a href="https://clinic.test/book?patient=ana.lopez%40mail.test&amp;dob=1961-07-04">Book</a> <a href=\'https://clinic.test/flu\'>Flu</a></body></html>';

  it('rewrites links to opaque tokens and adds a pixel, with nothing of the patient in any URL', async () => {
    const out = await tracking.instrument(messages[0]!, html);
    const urls = [...out.matchAll(/(?:href|src)=["']([^"']+)["']/g)].map((m) => m[1]!);
    expect(urls).toHaveLength(3);
    for (const u of urls) {
      expect(u).toMatch(/^https:\/\/t\.clinic\.test\/t\/[co]\/[A-Za-z0-9_-]{22}$/);
      expect(u).not.toMatch(/ana|lopez|1961|clinic\.test\/book/);
    }
    expect(out).toContain('Dear Ana Lopez');
    const dump = JSON.stringify(await db.query('SELECT * FROM tracking_tokens'), (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    expect(dump).not.toContain('ana.lopez');
  });

  it('redirects a click to the stored target and counts people and machines apart', async () => {
    const out = await tracking.instrument(messages[0]!, html);
    const out2 = await tracking.instrument(messages[1]!, html);
    const token = (s: string, kind: 'c' | 'o') => new RegExp(`/t/${kind}/([A-Za-z0-9_-]{22})`).exec(s)![1]!;
    const person = { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko)', ip: '198.51.100.7' };
    expect(await tracking.handleClick(token(out, 'c'), person)).toEqual({ status: 302, location: 'https://clinic.test/book?patient=ana.lopez%40mail.test&dob=1961-07-04' });
    const pixel = await tracking.handleOpen(token(out, 'o'), person);
    expect(pixel).toMatchObject({ status: 200, contentType: 'image/gif' });
    await tracking.handleOpen(token(out, 'o'), { userAgent: 'Mozilla/5.0', ip: '17.58.100.12' });
    await tracking.handleOpen(token(out2, 'o'), { userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' });
    await tracking.handleClick(token(out2, 'c'), { userAgent: 'Mozilla/5.0 (compatible; Barracuda Sentinel)', method: 'HEAD' });
    const stats = await tracking.campaignStats('spring');
    expect(stats.opens).toEqual({ human: 1, machine: 2, uniqueHuman: 1 });
    expect(stats.clicks).toEqual({ human: 1, machine: 1, uniqueHuman: 1 });
    expect(stats.states).toEqual({ sending: 2 });
    await expect(tracking.handleClick('x'.repeat(22), person)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A click token is not a pixel token and the other way round.
    await expect(tracking.handleClick(token(out, 'o'), person)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('classifies the usual prefetchers', () => {
    expect(classifyAgent({ userAgent: 'Mozilla/5.0', ip: '17.1.2.3' })).toBe('apple-mpp');
    expect(classifyAgent({ userAgent: 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html' })).toBe('yahoo-proxy');
    expect(classifyAgent({ userAgent: 'python-requests/2.31' })).toBe('scanner');
    expect(classifyAgent({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148', ip: '203.0.113.9' })).toBe('human');
  });
});

describe('webhooks', () => {
  let server: http.Server;
  let url: string;
  const received: Array<{ body: string; signature: string; id: string }> = [];
  let failNext = 0;
  let clock = new Date();
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          return void res.writeHead(503).end();
        }
        received.push({ body, signature: String(req.headers[SIGNATURE_HEADER]), id: String(req.headers['x-outreach-event-id']) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(() => {
    server.close();
  });

  it('signs each event, retries with back-off after a failure, and replays on request', async () => {
    const secret = 'whsec_test_0123456789abcdef';
    const hooks = createWebhooks({ db, endpoints: [url], secret, now: () => clock, retryDelaysMs: [60_000] });
    const event = { type: 'message.delivered' as const, outboxId: '12', campaignId: 'spring', at: clock.toISOString(), detail: { tls: 'TLSv1.3' } };
    const id = await hooks.emit(event);
    await hooks.emit(event, id); // the same event twice is queued once
    failNext = 1;
    expect(await hooks.runDue()).toEqual({ delivered: 0, retrying: 1, failed: 0 });
    expect(await hooks.runDue()).toEqual({ delivered: 0, retrying: 0, failed: 0 });
    clock = new Date(clock.getTime() + 60_001);
    expect(await hooks.runDue()).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(got.id).toBe(id);
    expect(JSON.parse(got.body)).toEqual(event);
    expect(verifyWebhook(secret, got.signature, got.body, clock)).toBe(true);
    expect(verifyWebhook(secret, got.signature, got.body.replace('12', '13'), clock)).toBe(false);
    expect(verifyWebhook('other-secret', got.signature, got.body, clock)).toBe(false);
    expect(verifyWebhook(secret, got.signature, got.body, new Date(clock.getTime() + 3_600_000))).toBe(false);
    expect(signWebhook(secret, got.body, clock)).toBe(got.signature);
    expect(await hooks.replay({ since: new Date(0) })).toBe(1);
    expect(await hooks.runDue()).toEqual({ delivered: 1, retrying: 0, failed: 0 });
    expect(received.map((r) => r.id)).toEqual([id, id]);
  });
});
