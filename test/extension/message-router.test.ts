// The background's message handling against a real connector: who may send what, validation before anything leaves, and where the session is kept.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callConnector } from '../../extension/background/connector-http.js';
import { messageRouter } from '../../extension/background/message-router.js';
import { sessionStore } from '../../extension/background/session-store.js';
import { authorizedContact, users } from '../e2e/support/outreach-fixtures.js';
import { recordingFetch, startTestConnector, type TestConnector } from './support/connector-client.js';
import { MemoryStorageArea } from './support/memory-storage.js';

const extensionId = 'abcdefghijklmnopabcdefghijklmnop';
const extensionUrl = `chrome-extension://${extensionId}/`;
const page = { id: extensionId, url: `${extensionUrl}popup/index.html` };
const contentScript = { id: extensionId, url: `https://acme.lightning.force.com/lightning/r/Contact/${authorizedContact.id}/view` };

describe('background message router', () => {
  let world: TestConnector;
  let calls: ReturnType<typeof recordingFetch>['calls'];
  let local: MemoryStorageArea;
  let session: MemoryStorageArea;
  let synced: string[][];
  let sessionChanges: number;
  let router: ReturnType<typeof messageRouter>;

  beforeAll(async () => {
    world = await startTestConnector();
  }, 60_000);
  afterAll(() => world?.close());

  beforeEach(async () => {
    local = new MemoryStorageArea();
    session = new MemoryStorageArea();
    synced = [];
    sessionChanges = 0;
    const recording = recordingFetch();
    calls = recording.calls;
    router = messageRouter({
      notifySessionChanged: async () => {
        sessionChanges++;
      },
      store: sessionStore(local.asArea(), session.asArea()),
      extensionId,
      extensionUrl,
      fetch: recording.fetch,
      syncEhrOrigins: async (origins) => {
        synced.push(origins);
        return origins.map((o) => `${o}/*`);
      },
    });
    expect(await router.receive({ type: 'settings/set-connector', url: world.url }, page)).toMatchObject({ ok: true });
  });

  const signIn = (user: { username: string; password: string }) => router.receive({ type: 'session/sign-in', username: user.username, password: user.password }, page);

  it('keeps the bearer token in session storage only, and the connector URL in local storage', async () => {
    const reply = await signIn(users.marketer);
    expect(reply).toMatchObject({ ok: true, data: { signedIn: true, user: { username: users.marketer.username, role: 'marketer' } } });
    const token = (session.items.get('session') as { token: string }).token;
    expect(token.length).toBeGreaterThan(20);
    expect(local.dump()).not.toContain(token);
    expect(local.dump()).toContain(world.url);
    expect(JSON.stringify(reply)).not.toContain(token);
  });

  it('takes the one-time password flag from the sign-in answer: one request, no probe, no password kept', async () => {
    const admin = { baseUrl: world.url, token: () => world.token({ username: world.adminUsername, password: users.admin.password }) };
    const username = `otp.router.${process.pid}`;
    const oneTime = 'router one-time passphrase 4';
    const created = await callConnector(admin, 'createUser', { body: { username, password: 'router initial passphrase 3', role: 'clinician' } });
    await callConnector(admin, 'updateUser', { params: { id: created.id }, body: { password: oneTime } });

    const before = calls.length;
    expect(await signIn({ username, password: oneTime })).toMatchObject({ ok: true, data: { signedIn: true, passwordChangeRequired: true, user: { username, role: 'clinician' } } });
    expect(calls.slice(before)).toEqual([{ method: 'POST', path: '/session', status: 201 }]);
    expect(session.items.get('session')).toMatchObject({ username, passwordChangeRequired: true });
    expect(session.dump()).not.toContain(oneTime);
    expect(local.dump()).not.toContain(oneTime);
    // The connector still refuses the user's other calls; the background passes its refusal on as it is.
    expect(await router.receive({ type: 'api', route: 'listCampaigns', query: {} }, page)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    const mark = calls.length;
    expect(await signIn(users.clinician)).toMatchObject({ ok: true, data: { signedIn: true, passwordChangeRequired: false } });
    expect(calls.slice(mark)).toEqual([{ method: 'POST', path: '/session', status: 201 }]);
    expect(session.items.get('session')).toMatchObject({ username: users.clinician.username, passwordChangeRequired: false });
  });

  it('refuses messages from other extensions and web pages', async () => {
    expect(await router.receive({ type: 'session/get' }, { id: 'someone-else', url: 'https://evil.example/' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('answers a malformed message with BAD_MESSAGE and the path, without calling the connector', async () => {
    const before = calls.length;
    expect(await router.receive({ type: 'api', route: 'dropTables' }, page)).toMatchObject({ ok: false, error: { code: 'BAD_MESSAGE', field: 'route' } });
    expect(await router.receive({ type: 'session/sign-in', username: 'x' }, page)).toMatchObject({ ok: false, error: { code: 'BAD_MESSAGE' } });
    expect(calls.length).toBe(before);
  });

  it('lets a content script read consent but not sign in, change settings or call admin routes', async () => {
    await signIn(users.admin);
    const lookup = await router.receive({ type: 'api', route: 'lookupPatient', query: { crmId: authorizedContact.id } }, contentScript);
    expect(lookup).toMatchObject({ ok: true, data: { found: true, consent: { marketingAuthorized: true } } });
    expect(await router.receive({ type: 'session/sign-in', username: 'a', password: 'b' }, contentScript)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await router.receive({ type: 'settings/set-connector', url: 'https://evil.example' }, contentScript)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await router.receive({ type: 'api', route: 'listUsers' }, contentScript)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await router.receive({ type: 'api', route: 'listUsers' }, page)).toMatchObject({ ok: true });
  });

  it('validates a call against the contract before it leaves the browser and names the field', async () => {
    await signIn(users.marketer);
    const before = calls.length;
    const reply = await router.receive({ type: 'api', route: 'lookupPatient', query: { crmId: 'not an id' } }, contentScript);
    expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field: 'query.crmId' } });
    const unknownField = await router.receive(
      { type: 'api', route: 'createCampaign', body: { name: 'x', templateId: world.templateId, audience: { kind: 'contact', crmId: authorizedContact.id }, purpose: 'marketing', sendNow: true } },
      page,
    );
    expect(unknownField).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field: 'body' } });
    const badAudience = await router.receive({ type: 'api', route: 'preview', body: { templateId: world.templateId, audience: { kind: 'everyone' } } }, page);
    expect(badAudience).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field: 'body.audience.kind' } });
    expect(calls.length).toBe(before);
  });

  it('refuses a route the role does not allow without asking the connector', async () => {
    await signIn(users.clinician);
    const before = calls.length;
    const reply = await router.receive(
      { type: 'api', route: 'createCampaign', body: { name: 'x', templateId: world.templateId, audience: { kind: 'contact', crmId: authorizedContact.id }, purpose: 'marketing' } },
      contentScript,
    );
    expect(reply).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(calls.length).toBe(before);
  });

  it('says UNAUTHENTICATED before sign-in and after sign-out, and signs out at the connector', async () => {
    expect(await router.receive({ type: 'api', route: 'listTemplates' }, contentScript)).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    await signIn(users.marketer);
    expect(await router.receive({ type: 'api', route: 'listTemplates' }, contentScript)).toMatchObject({ ok: true });
    expect(await router.receive({ type: 'session/sign-out' }, page)).toMatchObject({ ok: true, data: { signedIn: false } });
    expect(calls.at(-1)).toEqual({ method: 'DELETE', path: '/session', status: 204 });
    expect(session.items.size).toBe(0);
    expect(await router.receive({ type: 'api', route: 'listTemplates' }, contentScript)).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    // Open pages were told twice: at sign-in and at sign-out.
    expect(sessionChanges).toBe(2);
  });

  it('drops the local session when the connector no longer knows the token', async () => {
    await signIn(users.marketer);
    const stored = session.items.get('session') as { token: string };
    session.items.set('session', { ...stored, token: 'x'.repeat(32) });
    expect(await router.receive({ type: 'api', route: 'listTemplates' }, contentScript)).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(session.items.size).toBe(0);
  });

  it('drops an expired session without a connector call', async () => {
    await signIn(users.marketer);
    const stored = session.items.get('session') as Record<string, unknown>;
    session.items.set('session', { ...stored, expiresAt: '2020-01-01T00:00:00.000Z' });
    expect(await router.receive({ type: 'session/get' }, page)).toMatchObject({ ok: true, data: { signedIn: false } });
    expect(session.items.size).toBe(0);
  });

  it('accepts https connectors and plain http only on loopback; a new connector ends the session', async () => {
    expect(await router.receive({ type: 'settings/set-connector', url: 'http://outreach.example.org' }, page)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field: 'url' } });
    expect(await router.receive({ type: 'settings/set-connector', url: 'https://u:p@outreach.example.org' }, page)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    await signIn(users.marketer);
    expect(await router.receive({ type: 'settings/set-connector', url: 'https://outreach.example.org/' }, page)).toMatchObject({
      ok: true,
      data: { connectorUrl: 'https://outreach.example.org', signedIn: false },
    });
  });

  it('reports a wrong password with the connector code and keeps nothing', async () => {
    expect(await signIn({ username: users.marketer.username, password: 'wrong' })).toMatchObject({ ok: false, error: { code: 'LOGIN_FAILED' } });
    expect(session.items.size).toBe(0);
  });

  it('registers the EHR script on granted origins and remembers them', async () => {
    const reply = await router.receive({ type: 'ehr/origins-changed', origins: ['https://ehr.example.org'] }, page);
    expect(reply).toMatchObject({ ok: true, data: { registered: ['https://ehr.example.org/*'] } });
    expect(synced).toEqual([['https://ehr.example.org']]);
    expect(await router.receive({ type: 'session/get' }, page)).toMatchObject({ data: { ehrOrigins: ['https://ehr.example.org'] } });
  });
});
