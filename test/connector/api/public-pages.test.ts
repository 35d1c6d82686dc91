// The public pages of `outreach serve`: one-click unsubscribe (RFC 8058) records the opt-out only on POST, tracking links answer with the pixel or the redirect, unknown links get a 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTracking } from '../../../connector/delivery/tracking.js';
import type { OutboxMessage } from '../../../connector/delivery/outbox.js';
import { syntheticFacts } from '../store/synthetic-facts.js';
import { startApiWorld, type ApiWorld } from './api-world.js';

describe('public pages', () => {
  let world: ApiWorld;
  let patientId: string;
  let token: string;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const marketingAllowed = async () => (await world.app.consent.isAllowed(patientId, 'marketing')).allowed;

  beforeAll(async () => {
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } }, { OUTREACH_PUBLIC_URL: 'https://outreach.clinic.example' });
    patientId = String((await world.app.facts.upsertFacts([syntheticFacts(1)]))[0]);
    await world.app.consent.grant({ patientId, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'mkt-v1' }, { name: 'test-setup', role: 'admin' });
    token = (await world.app.sending()).unsubscribeTokens.issue({ patientId, campaignId: '7', purpose: 'marketing', channel: 'email' });
  });
  afterAll(async () => world?.close());

  it('shows the unsubscribe button on GET and changes nothing', async () => {
    const r = await world.call('GET', `/u/${token}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.text).toContain('List-Unsubscribe');
    expect(r.headers.get('content-security-policy')).toMatch(/form-action 'self'/);
    expect(await marketingAllowed()).toBe(true);
  });

  it('records the opt-out on the one-click POST, once, from the unsubscribe link', async () => {
    const r = await world.call('POST', `/u/${token}`, { raw: 'List-Unsubscribe=One-Click', headers: form });
    expect(r.status).toBe(200);
    expect(await marketingAllowed()).toBe(false);
    const again = await world.call('POST', `/u/${token}`, { raw: 'List-Unsubscribe=One-Click', headers: form });
    expect(again.status).toBe(200);
    const history = await world.app.consent.history(patientId);
    expect(history.map((h) => [h.status, h.source])).toEqual([
      ['active', 'signed-form'],
      ['revoked', 'unsubscribe-link'],
    ]);
  });

  it('refuses a forged token and a POST without the one-click body', async () => {
    const forged = `${token.slice(0, -4)}AAAA`;
    const bad = await world.call('POST', `/u/${forged}`, { raw: 'List-Unsubscribe=One-Click', headers: form });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Unsubscribe');
    const noBody = await world.call('POST', `/u/${token}`, { raw: 'x=1', headers: form });
    expect(noBody.status).toBe(400);
  });

  it('serves the open pixel and the click redirect of an instrumented message, and counts a person apart from a scanner', async () => {
    const tracking = createTracking({ db: world.app.db, cipher: world.app.cipher, publicUrl: 'https://outreach.clinic.example' });
    const html = await tracking.instrument({ id: '41', campaignId: '7' } as OutboxMessage, '<p><a href="https://clinic.example/book?x=1&amp;y=2">Book</a></p>');
    const click = /\/t\/c\/([A-Za-z0-9_-]{22})/.exec(html)![1]!;
    const open = /\/t\/o\/([A-Za-z0-9_-]{22})/.exec(html)![1]!;
    const browser = { 'user-agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15' };
    const pixel = await world.call('GET', `/t/o/${open}`, { headers: browser });
    expect(pixel.status).toBe(200);
    expect(pixel.headers.get('content-type')).toBe('image/gif');
    const redirect = await fetch(`${world.base}/t/c/${click}`, { redirect: 'manual', headers: browser });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://clinic.example/book?x=1&y=2');
    await fetch(`${world.base}/t/c/${click}`, { redirect: 'manual', headers: { 'user-agent': 'python-requests/2.31' } });
    expect(await tracking.campaignStats('7')).toMatchObject({ opens: { human: 1 }, clicks: { human: 1, machine: 1 } });
    expect((await world.call('GET', `/t/c/${'B'.repeat(22)}`)).status).toBe(404);
  });

  it('answers an unknown or malformed escrow link with a 404 page', async () => {
    const unknown = await world.call('GET', `/m/${'A'.repeat(43)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/text\/html/);
    const malformed = await world.call('GET', '/m/short');
    expect(malformed.status).toBe(404);
    expect(malformed.text).not.toContain('short');
  });
});
