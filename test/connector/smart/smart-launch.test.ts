// The SMART app launch over HTTP against a fake EHR (HTTPS, our test CA): PKCE and state, id_token validation, practitioner mapping, the cookie session, signed approvals, and every refusal with its clear error.
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer } from '../../../connector/api/server.js';
import { SmartSessions } from '../../../connector/smart/app-sessions.js';
import { registerSmartCommands } from '../../../connector/smart/cli.js';
import { storeKinds } from '../../support/postgres.js';
import { cliRunner } from '../../support/cli-runner.js';
import { createTestCa } from '../../support/test-ca.js';
import { callback, cookiesOf, linkedPractitioner, startLaunch, startSmartWorld, unlinkedPractitioner, type SmartWorld } from './smart-world.js';

const refusal = async (res: Response) => {
  const html = await res.text();
  return { status: res.status, code: /data-error-code="([A-Z_]+)"/.exec(html)?.[1], html };
};

describe.each(storeKinds)('SMART app launch on %s', (kind) => {
  let world: SmartWorld;
  beforeAll(async () => {
    world = await startSmartWorld(kind);
  }, 90_000);
  afterAll(async () => world?.close());

  /** A completed launch: the session cookie header and the callback response. */
  const launched = async (practitioner: string | null = linkedPractitioner) => {
    const steps = await startLaunch(world, practitioner);
    const res = await callback(steps.callbackUrl, steps.launchCookie);
    expect(res.status).toBe(303);
    const set = cookiesOf(res);
    return { res, steps, cookie: `outreach-smart=${set['outreach-smart']!.value}`, set };
  };
  const api = (path: string, cookie: string, init: RequestInit = {}) =>
    fetch(`${world.base}${path}`, { ...init, headers: { cookie, accept: 'application/json', ...(init.headers as Record<string, string>) } });

  it('completes an EHR launch with PKCE and a bound state, then signs an approval with the Practitioner and the iss', async () => {
    const { res, steps, cookie, set } = await launched();
    // The authorization request: code flow, PKCE S256, the app's scopes, the EHR's launch id, state and nonce, aud = iss.
    const authorize = new URL(steps.authorizeUrl).searchParams;
    expect(authorize.get('response_type')).toBe('code');
    expect(authorize.get('code_challenge_method')).toBe('S256');
    expect(authorize.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.get('scope')).toBe('openid fhirUser launch user/Practitioner.rs');
    expect(authorize.get('aud')).toBe(world.ehr.iss);
    expect(authorize.get('state')!.length).toBeGreaterThanOrEqual(43);
    expect(authorize.get('nonce')!.length).toBeGreaterThanOrEqual(43);
    // The token exchange carried the verifier (the fake EHR checked it against the challenge).
    expect(world.ehr.tokenRequests.at(-1)).toMatchObject({ outcome: 'ok' });
    expect(world.ehr.tokenRequests.at(-1)!.params.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The browser gets an HttpOnly SameSite cookie and a URL with nothing in it; the launch cookie is cleared.
    expect(res.headers.get('location')).toBe('/smart/app');
    expect(set['outreach-smart']!.attributes).toMatch(/HttpOnly/);
    expect(set['outreach-smart']!.attributes).toMatch(/SameSite=Lax/);
    expect(set['outreach-smart-launch']!.attributes).toMatch(/Max-Age=0/);
    expect(res.headers.get('content-security-policy')).toMatch(new RegExp(`frame-ancestors ${world.ehr.origin}(;|$)`));
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBeNull();

    const session = await (await api('/smart/api/session', cookie)).json();
    expect(session).toMatchObject({ practitioner: linkedPractitioner, kind: 'ehr', user: { username: 'clinician', role: 'clinician' }, ehr: { iss: world.ehr.iss } });

    const list = await (await api('/smart/api/v1/campaigns?status=pending-approval', cookie)).json();
    expect(list.campaigns.map((c: { id: string }) => c.id)).toContain(world.campaign.id);
    const review = await (await api(`/smart/api/review/${world.campaign.id}`, cookie)).json();
    expect(review.findings.body.findings.map((f: { kind: string }) => f.kind)).toContain('condition');
    expect(review.findings.subject.findings).toEqual([]);
    // 3 authorized with an address (2 over verified TLS, 1 held: its domain offers no STARTTLS and the content needs TLS), 1 without authorization or address.
    expect(review.forecast).toMatchObject({ recipients: 3, tls: 2, escrow: 0, held: 1, suppressed: 1, modeProblem: null });

    // Without the anti-forgery header the cookie alone does not approve.
    const forged = await api(`/smart/api/v1/campaigns/${world.campaign.id}/approve`, cookie, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(forged.status).toBe(403);
    const approved = await api(`/smart/api/v1/campaigns/${world.campaign.id}/approve`, cookie, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-outreach-csrf': session.csrf },
      body: JSON.stringify({ comment: 'Reviewed in the EHR' }),
    });
    expect(approved.status).toBe(200);
    expect((await approved.json()).status).toBe('approved');
    const decisions = await world.w.sending.campaigns.decisions(world.w.sessions.clinician, world.campaign.id);
    expect(decisions.at(-1)).toMatchObject({ decision: 'approved', by: 'clinician', practitioner: linkedPractitioner, iss: world.ehr.iss, comment: 'Reviewed in the EHR' });
    const audit: string[] = [];
    for await (const r of world.w.app.audit.search({ actionPrefix: 'smart.' })) audit.push(`${r.action} ${r.entity} ${r.outcome}`);
    expect(audit).toContain(`smart.approve campaign/${world.campaign.id}/${linkedPractitioner} success`);
    expect(audit).toContain(`smart.launch smart-ehr/${world.registration.id}/${linkedPractitioner} success`);
    expect((await world.w.app.audit.verify()).ok).toBe(true);

    // The EHR's access token is sealed in the store, never in the clear.
    const [row] = await world.w.app.db.query<{ access_token_sealed: Uint8Array; scope: string }>('SELECT access_token_sealed, scope FROM smart_sessions ORDER BY id DESC LIMIT 1');
    expect(row!.scope).toContain('fhirUser');
    expect(Buffer.from(row!.access_token_sealed).length).toBeGreaterThan(40);

    // Ending the session ends the cookie.
    const out = await api('/smart/api/logout', cookie, { method: 'POST', headers: { 'x-outreach-csrf': session.csrf } });
    expect(out.status).toBe(204);
    expect((await api('/smart/api/session', cookie)).status).toBe(401);
  });

  it('runs a standalone launch without launch context', async () => {
    world.ehr.signedInAs = linkedPractitioner;
    const { steps, cookie } = await launched(null);
    const authorize = new URL(steps.authorizeUrl).searchParams;
    expect(authorize.get('launch')).toBeNull();
    expect(authorize.get('scope')).toBe('openid fhirUser user/Practitioner.rs');
    expect(await (await api('/smart/api/session', cookie)).json()).toMatchObject({ kind: 'standalone', practitioner: linkedPractitioner });
    // With one EHR registered, a standalone launch may leave iss out.
    const bare = await fetch(`${world.base}/smart/launch`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(new URL(bare.headers.get('location')!).searchParams.get('aud')).toBe(world.ehr.iss);
  });

  it('refuses a wrong state, and a right state coming back to another browser', async () => {
    const steps = await startLaunch(world, linkedPractitioner);
    const wrong = new URL(steps.callbackUrl);
    wrong.searchParams.set('state', 'not-the-state-we-sent-aaaaaaaaaaaaaaaaaaaaaaaaa');
    const r1 = await refusal(await callback(wrong.href, steps.launchCookie));
    expect(r1).toMatchObject({ status: 400, code: 'SMART_STATE_INVALID' });
    expect(r1.html).toContain('the state of this authorization response is unknown or was used already');

    const other = await startLaunch(world, linkedPractitioner);
    const r2 = await refusal(await callback(other.callbackUrl, ''));
    expect(r2).toMatchObject({ status: 400, code: 'SMART_STATE_INVALID' });
    expect(r2.html).toContain('started in another browser');
  });

  it("refuses an id_token whose signature does not verify against the EHR's JWKS", async () => {
    const steps = await startLaunch(world, linkedPractitioner, { rogueSignature: true });
    const r = await refusal(await callback(steps.callbackUrl, steps.launchCookie));
    expect(r).toMatchObject({ status: 401, code: 'SMART_ID_TOKEN_INVALID' });
    expect(r.html).toContain("signature does not verify against the EHR&#39;s keys");
  });

  it('refuses an expired id_token, one for another client, and one for another launch (nonce)', async () => {
    for (const [tamper, text] of [
      [{ expiresIn: -120 }, 'the id_token has expired'],
      [{ audience: 'someone-else' }, 'issued for another client (aud)'],
      [{ nonce: 'a-nonce-from-another-launch' }, 'nonce mismatch'],
      [{ fhirUser: 'Patient/p-1' }, 'is not a Practitioner'],
    ] as const) {
      const steps = await startLaunch(world, linkedPractitioner, tamper);
      const r = await refusal(await callback(steps.callbackUrl, steps.launchCookie));
      expect(r.html).toContain(text);
      expect(r.code).toMatch(/^SMART_(ID_TOKEN_INVALID|NOT_PRACTITIONER)$/);
    }
  });

  it('refuses a launch from an unknown iss', async () => {
    const res = await fetch(`${world.base}/smart/launch?iss=${encodeURIComponent('https://rogue-ehr.example/fhir')}&launch=abc`, { redirect: 'manual' });
    const r = await refusal(res);
    expect(r).toMatchObject({ status: 400, code: 'SMART_UNKNOWN_ISS' });
    expect(r.html).toContain('is not registered for app launch');
    expect(res.headers.get('location')).toBeNull();
  });

  it('refuses a replayed authorization code, whether the whole response is replayed or the code rides a fresh state', async () => {
    const first = await launched();
    // The same response again: its state is spent.
    const again = await refusal(await callback(first.steps.callbackUrl, first.steps.launchCookie));
    expect(again).toMatchObject({ status: 400, code: 'SMART_STATE_INVALID' });
    // The old code under a new launch's state and cookie: the EHR refuses the code (single use) and so do we.
    const fresh = await startLaunch(world, linkedPractitioner);
    const spliced = new URL(fresh.callbackUrl);
    spliced.searchParams.set('code', new URL(first.steps.callbackUrl).searchParams.get('code')!);
    const replay = await refusal(await callback(spliced.href, fresh.launchCookie));
    expect(replay).toMatchObject({ status: 401, code: 'SMART_TOKEN_REJECTED' });
    expect(replay.html).toContain('refused the authorization code (invalid_grant)');
    expect(world.ehr.tokenRequests.at(-1)).toMatchObject({ outcome: 'invalid_grant' });
  });

  it('lets a practitioner linked to no clinician see who they are, but not list or approve', async () => {
    const campaign = await world.pendingCampaign('unlinked');
    const { cookie } = await launched(unlinkedPractitioner);
    const session = await (await api('/smart/api/session', cookie)).json();
    expect(session).toMatchObject({ practitioner: unlinkedPractitioner, user: null });
    const list = await api('/smart/api/v1/campaigns?status=pending-approval', cookie);
    expect(list.status).toBe(403);
    const approve = await api(`/smart/api/v1/campaigns/${campaign.id}/approve`, cookie, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-outreach-csrf': session.csrf }, body: '{}',
    });
    expect(approve.status).toBe(403);
    const outcome = await approve.json();
    expect(outcome.issue[0].details.coding[0].code).toBe('PRACTITIONER_NOT_LINKED');
    expect(outcome.issue[0].details.text).toContain(`${unlinkedPractitioner} of Fake EHR is linked to no clinician account`);
    expect((await world.w.sending.campaigns.get(world.w.sessions.clinician, campaign.id)).status).toBe('pending-approval');

    // Once an admin links them (CLI), a new launch approves; the old session ended with the link change.
    const run = cliRunner([registerSmartCommands], () => world.w.app);
    const linked = await run(['smart', 'link-practitioner', '--ehr', world.ehr.iss, '--practitioner', unlinkedPractitioner, '--username', 'clinician']);
    expect(linked.exitCode).toBe(0);
    expect(linked.out).toMatchObject({ practitioner: unlinkedPractitioner, username: 'clinician' });
    expect((await api('/smart/api/session', cookie)).status).toBe(401);
    const next = await launched(unlinkedPractitioner);
    const info = await (await api('/smart/api/session', next.cookie)).json();
    expect(info.user).toMatchObject({ username: 'clinician' });
    const rejected = await api(`/smart/api/v1/campaigns/${campaign.id}/reject`, next.cookie, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-outreach-csrf': info.csrf }, body: JSON.stringify({ comment: 'Too clinical for e-mail' }),
    });
    expect((await rejected.json()).status).toBe('rejected');
    const decisions = await world.w.sending.campaigns.decisions(world.w.sessions.clinician, campaign.id);
    expect(decisions.at(-1)).toMatchObject({ decision: 'rejected', practitioner: unlinkedPractitioner, iss: world.ehr.iss });
    await run(['smart', 'unlink-practitioner', '--ehr', world.registration.id, '--practitioner', unlinkedPractitioner]);
  });

  it('auto-provisions a clinician account for an EHR that allows it', async () => {
    const actor = { name: 'test-setup', role: 'admin' };
    const { registration, registry } = world;
    await registry.register({ name: registration.name, iss: registration.iss, clientId: registration.clientId, redirectUri: registration.redirectUri, autoProvision: true }, actor);
    try {
      const { cookie } = await launched('Practitioner/new-doc-7');
      const info = await (await api('/smart/api/session', cookie)).json();
      expect(info.user).toEqual({ username: `ehr${registration.id}.new-doc-7`, role: 'clinician' });
      expect((await api('/smart/api/v1/campaigns?status=pending-approval', cookie)).status).toBe(200);
      expect((await registry.links(registration.id)).find((l) => l.practitioner === 'Practitioner/new-doc-7')).toMatchObject({ provisioned: true });
    } finally {
      await registry.register({ name: registration.name, iss: registration.iss, clientId: registration.clientId, redirectUri: registration.redirectUri, autoProvision: false }, actor);
    }
  });

  it('over HTTPS sets __Host- cookies that are Secure, SameSite=None and Partitioned, so they work inside the EHR frame', async () => {
    const ca = createTestCa('SMART https test CA');
    const server = await createApiServer(world.w.app, { defaultMetrics: false, https: ca.leaf(['127.0.0.1']), smart: { ca: [world.ehrCa] } });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const dispatcher = new Agent({ connect: { ca: ca.cert } });
    try {
      const port = (server.server.address() as AddressInfo).port;
      const query = new URLSearchParams({ iss: world.ehr.iss, launch: world.ehr.createLaunch(linkedPractitioner) });
      const res = await fetch(`https://127.0.0.1:${port}/smart/launch?${query}`, { redirect: 'manual', dispatcher } as RequestInit);
      expect(res.status).toBe(302);
      const launchCookie = cookiesOf(res)['__Host-outreach-smart-launch']!;
      expect(launchCookie.attributes.split('; ').sort()).toEqual(['HttpOnly', 'Max-Age=600', 'Partitioned', 'Path=/', 'SameSite=None', 'Secure']);
      expect(res.headers.get('strict-transport-security')).toContain('max-age=');
    } finally {
      await dispatcher.close();
      await server.close();
    }
  });

  it("ends the app session when the launch's access token expires, and when idle", async () => {
    const { app } = world.w;
    let now = new Date('2026-11-23T10:00:00Z');
    const sessions = new SmartSessions({ db: app.db, cipher: app.cipher, idleMinutes: 15, clock: () => now });
    const userId = (await app.users.byName('clinician'))!.id;
    const issued = await sessions.issue({
      ehrId: world.registration.id, practitioner: linkedPractitioner, iss: world.ehr.iss, userId, accessToken: 'synthetic-access-token', scope: 'openid', kind: 'ehr',
      expiresAt: new Date(now.getTime() + 20 * 60_000),
    });
    const live = await sessions.resolve(issued.token);
    expect(live.session).toMatchObject({ username: 'clinician', role: 'clinician', ehrIdentity: { practitioner: linkedPractitioner, iss: world.ehr.iss } });
    expect(live.session!.absoluteExpiresAt).toEqual(issued.expiresAt);
    now = new Date(now.getTime() + 14 * 60_000);
    await sessions.resolve(issued.token);
    now = new Date(now.getTime() + 6 * 60_000);
    await expect(sessions.resolve(issued.token)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
    const idle = await sessions.issue({ ehrId: world.registration.id, practitioner: linkedPractitioner, iss: world.ehr.iss, userId, accessToken: 't', scope: 'openid', kind: 'ehr', expiresAt: new Date(now.getTime() + 3_600_000) });
    now = new Date(now.getTime() + 16 * 60_000);
    await expect(sessions.resolve(idle.token)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
    // A disabled clinician account ends its app sessions too.
    const { user } = await app.users.add({ username: 'clinician-two', role: 'clinician', password: 'correct horse battery staple' }, { name: 'test-setup', role: 'admin' });
    const other = await sessions.issue({ ehrId: world.registration.id, practitioner: 'Practitioner/two-2', iss: world.ehr.iss, userId: user.id, accessToken: 't', scope: 'openid', kind: 'ehr', expiresAt: new Date(now.getTime() + 3_600_000) });
    expect((await sessions.resolve(other.token)).user).toMatchObject({ username: 'clinician-two' });
    await app.users.disable('clinician-two', { name: 'test-setup', role: 'admin' });
    await expect(sessions.resolve(other.token)).rejects.toMatchObject({ code: 'USER_DISABLED' });
  });

  it('lets admins register EHRs and link practitioners over /smart/admin and the CLI; others are refused', async () => {
    const login = async (username: string) =>
      (await (await fetch(`${world.base}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'correct horse battery staple' }) })).json()).token as string;
    const admin = await login('admin');
    const marketer = await login('marketer');
    const body = { name: 'Second EHR', iss: 'https://ehr-two.example/fhir/', clientId: 'app-2', redirectUri: `https://outreach.example/smart/callback`, frameOrigins: ['https://portal.ehr-two.example'] };
    const post = (token: string, path: string, b: unknown) =>
      fetch(`${world.base}/smart/admin${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
    expect((await post(marketer, '/ehrs', body)).status).toBe(403);
    const bad = await post(admin, '/ehrs', { ...body, iss: 'http://ehr-two.example/fhir' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).issue[0].details.text).toContain('iss: must use https');
    const created = await post(admin, '/ehrs', body);
    expect(created.status).toBe(201);
    const ehr = await created.json();
    expect(ehr).toMatchObject({ iss: 'https://ehr-two.example/fhir', frameOrigins: ['https://portal.ehr-two.example'], autoProvision: false });
    const link = await post(admin, `/ehrs/${ehr.id}/practitioners`, { practitioner: 'Practitioner/x-1', username: 'marketer' });
    expect(link.status).toBe(400);
    expect((await link.json()).issue[0].details.text).toContain('practitioners link to clinician accounts');
    expect((await post(admin, `/ehrs/${ehr.id}/practitioners`, { practitioner: 'Practitioner/x-1', username: 'clinician' })).status).toBe(201);

    const run = cliRunner([registerSmartCommands], () => world.w.app);
    const listed = await run(['smart', 'list']);
    expect(listed.out.map((e: { iss: string }) => e.iss)).toEqual(expect.arrayContaining([world.ehr.iss, 'https://ehr-two.example/fhir']));
    const links = await run(['smart', 'practitioners', '--ehr', 'https://ehr-two.example/fhir']);
    expect(links.out).toEqual([expect.objectContaining({ practitioner: 'Practitioner/x-1', username: 'clinician' })]);
    const registered = await run(['smart', 'register', '--name', 'Third', '--iss', 'https://ehr-three.example/fhir', '--client-id', 'c3', '--redirect-uri', 'https://outreach.example/smart/callback', '--auto-provision'], false);
    expect(registered.exitCode).toBe(0);
    expect(registered.text).toContain('Launch URL for the EHR: https://outreach.example/smart/launch');
    // The app may now be framed by the new EHR's portal as well.
    const page = await fetch(`${world.base}/smart/launch?iss=${encodeURIComponent('https://unknown.example/fhir')}`, { redirect: 'manual' });
    expect(page.headers.get('content-security-policy')).toContain('https://portal.ehr-two.example');
    expect(page.headers.get('content-security-policy')).toContain('https://ehr-three.example');
  });
});
