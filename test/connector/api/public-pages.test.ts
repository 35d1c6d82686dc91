// The public pages of `outreach serve`: one-click unsubscribe (RFC 8058) records the opt-out only on POST, and escrow links that are not valid get a plain 404 page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('answers an unknown or malformed escrow link with a 404 page', async () => {
    const unknown = await world.call('GET', `/m/${'A'.repeat(43)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/text\/html/);
    const malformed = await world.call('GET', '/m/short');
    expect(malformed.status).toBe(404);
    expect(malformed.text).not.toContain('short');
  });
});
