// @vitest-environment happy-dom
// A user on a one-time password, through the real background router and a real connector: the sign-in answer's flag asks for a new password, the user changes it, and is signed in again with a working session.
import { h, render } from 'preact';
import { act } from 'preact/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { callConnector } from '../../extension/background/connector-http.js';
import { messageRouter } from '../../extension/background/message-router.js';
import { sessionStore } from '../../extension/background/session-store.js';
import { ConnectorCallError } from '../../extension/connector-error.js';
import type { Reply, SessionState } from '../../extension/messages.js';
import { ChangePassword } from '../../extension/ui/change-password.js';
import { users } from '../e2e/support/outreach-fixtures.js';
import { recordingFetch, startTestConnector, type TestConnector } from './support/connector-client.js';
import { MemoryStorageArea } from './support/memory-storage.js';

const extensionId = 'abcdefghijklmnopabcdefghijklmnop';
const extensionUrl = `chrome-extension://${extensionId}/`;
const popup = { id: extensionId, url: `${extensionUrl}popup/index.html` };
const contentScript = { id: extensionId, url: 'https://acme.lightning.force.com/lightning/r/Contact/003Dn00000A1b2cAAB/view' };

describe('changing a one-time password from the extension', () => {
  let world: TestConnector;
  let adminToken: string;
  let local: MemoryStorageArea;
  let sessionArea: MemoryStorageArea;
  let router: ReturnType<typeof messageRouter>;
  let calls: ReturnType<typeof recordingFetch>['calls'];
  let host: HTMLElement;
  let user: { username: string; oneTime: string; chosen: string };
  let n = 0;

  beforeAll(async () => {
    world = await startTestConnector();
    adminToken = await world.token({ username: world.adminUsername, password: users.admin.password });
  }, 60_000);
  afterAll(() => world?.close());

  /** A marketer whose password an admin just set: a one-time password the connector wants changed. */
  beforeEach(async () => {
    user = { username: `otp.marketer.${process.pid}.${++n}`, oneTime: `one-time-pw-${n}-Xq7zK2`, chosen: `chosen-by-user-${n}-Rv4mP9` };
    const admin = { baseUrl: world.url, token: () => adminToken };
    const created = await callConnector(admin, 'createUser', { body: { username: user.username, password: `initial-pw-${n}-Lw3nB8`, role: 'marketer' } });
    await callConnector(admin, 'updateUser', { params: { id: created.id }, body: { password: user.oneTime } });
    local = new MemoryStorageArea();
    sessionArea = new MemoryStorageArea();
    const recording = recordingFetch();
    router = messageRouter({ store: sessionStore(local.asArea(), sessionArea.asArea()), extensionId, extensionUrl, fetch: recording.fetch, syncEhrOrigins: async (o) => o });
    expect(await router.receive({ type: 'settings/set-connector', url: world.url }, popup)).toMatchObject({ ok: true });
    calls = recording.calls;
    calls.length = 0;
    host = document.createElement('div');
    document.body.append(host);
  });
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  const send = async <T,>(message: unknown, sender = popup): Promise<T> => {
    const reply = (await router.receive(message, sender)) as Reply<T>;
    if (!reply.ok) throw new ConnectorCallError(reply.error);
    return reply.data;
  };
  const q = <T extends Element>(sel: string) => host.querySelector<T>(sel)!;
  const type = (name: string, value: string) =>
    act(() => {
      const input = q<HTMLInputElement>(`input[name=${name}]`);
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
  const mount = (currentPassword: string | undefined, onChange: (s: SessionState) => void) =>
    render(
      h(ChangePassword, {
        username: user.username,
        currentPassword,
        change: (current, next) => send<SessionState>({ type: 'session/change-password', currentPassword: current, newPassword: next }),
        onChange,
        onCancel: () => undefined,
      }),
      host,
    );

  it('asks for a new password after sign-in, changes it, and signs in again with a working session', async () => {
    const signedIn = await send<SessionState>({ type: 'session/sign-in', username: user.username, password: user.oneTime });
    expect(signedIn).toMatchObject({ signedIn: true, passwordChangeRequired: true, user: { username: user.username, role: 'marketer' } });
    // The sign-in answer said so: one request, no probe call.
    expect(calls).toEqual([{ method: 'POST', path: '/session', status: 201 }]);
    // Until then the connector refuses the user's other calls.
    await expect(send({ type: 'api', route: 'listTemplates' })).rejects.toMatchObject({ code: 'FORBIDDEN' });

    let after: SessionState | null = null;
    mount(user.oneTime, (s) => (after = s));
    expect(q<HTMLButtonElement>('button[name=change-password]').disabled).toBe(true);
    expect(host.querySelector('input[name=current-password]')).toBeNull();
    await type('new-password', 'short');
    expect(q('[role=alert]').textContent).toContain('at least 12 characters');
    await type('new-password', user.chosen);
    await type('repeat-password', `${user.chosen}-typo`);
    expect(q('[role=alert]').textContent).toContain('differ');
    expect(q<HTMLButtonElement>('button[name=change-password]').disabled).toBe(true);
    await type('repeat-password', user.chosen);
    expect(q<HTMLButtonElement>('button[name=change-password]').disabled).toBe(false);
    calls.length = 0;
    await act(() => q<HTMLButtonElement>('button[name=change-password]').click());
    await vi.waitFor(() => expect(after).not.toBeNull());

    // Changed, the old session ended, and the sign-in with the new password answered that no change is required.
    expect(calls).toEqual([
      { method: 'POST', path: '/session/password', status: 204 },
      { method: 'DELETE', path: '/session', status: 401 },
      { method: 'POST', path: '/session', status: 201 },
    ]);
    expect(after).toMatchObject({ signedIn: true, passwordChangeRequired: false, user: { username: user.username, role: 'marketer' } });
    // The new session works, from extension pages and content scripts alike.
    expect(await send({ type: 'api', route: 'listTemplates' })).toMatchObject({ templates: expect.any(Array) });
    expect(await send({ type: 'api', route: 'currentSession' }, contentScript)).toMatchObject({ user: { username: user.username } });
    // The connector holds the new password, not the one-time one.
    await expect(world.token({ username: user.username, password: user.oneTime })).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect(await world.token({ username: user.username, password: user.chosen })).toEqual(expect.any(String));
    // Neither password is kept in the extension's storage.
    for (const secret of [user.oneTime, user.chosen]) {
      expect(local.dump()).not.toContain(secret);
      expect(sessionArea.dump()).not.toContain(secret);
    }
  });

  it('asks for the one-time password when the page did not just take it, and shows the connector refusing a wrong one', async () => {
    await send({ type: 'session/sign-in', username: user.username, password: user.oneTime });
    let after: SessionState | null = null;
    mount(undefined, (s) => (after = s));
    await type('current-password', 'not-the-one-time-password');
    await type('new-password', user.chosen);
    await type('repeat-password', user.chosen);
    await act(() => q<HTMLButtonElement>('button[name=change-password]').click());
    await vi.waitFor(() => expect(q('[role=alert]').textContent).toContain('the current password is wrong'));
    expect(after).toBeNull();
    expect(await send({ type: 'session/get' })).toMatchObject({ signedIn: true, passwordChangeRequired: true });

    await type('current-password', user.oneTime);
    await act(() => q<HTMLButtonElement>('button[name=change-password]').click());
    await vi.waitFor(() => expect(after).toMatchObject({ signedIn: true, passwordChangeRequired: false }));
    expect(await send({ type: 'api', route: 'listSegments' })).toMatchObject({ segments: expect.any(Array) });
  });

  it('lets neither a content script nor the api message change the password', async () => {
    await send({ type: 'session/sign-in', username: user.username, password: user.oneTime });
    const change = { type: 'session/change-password', currentPassword: user.oneTime, newPassword: user.chosen };
    await expect(send(change, contentScript)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(send({ type: 'api', route: 'changePassword', body: { currentPassword: user.oneTime, newPassword: user.chosen } })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(send({ ...change, newPassword: 'too-short' })).rejects.toMatchObject({ code: 'BAD_MESSAGE' });
    expect(await world.token({ username: user.username, password: user.oneTime })).toEqual(expect.any(String));
  });

  it('does not ask a user with a chosen password to change it, and asks nothing but the sign-in', async () => {
    expect(await send({ type: 'session/sign-in', username: users.marketer.username, password: users.marketer.password })).toMatchObject({ signedIn: true, passwordChangeRequired: false });
    expect(await send({ type: 'session/sign-in', username: world.adminUsername, password: users.admin.password })).toMatchObject({ signedIn: true, passwordChangeRequired: false });
    expect(calls).toEqual([
      { method: 'POST', path: '/session', status: 201 },
      { method: 'POST', path: '/session', status: 201 },
    ]);
  });

  it('keeps the flag from the sign-in answer in session storage, never the one-time password', async () => {
    await send({ type: 'session/sign-in', username: user.username, password: user.oneTime });
    expect(sessionArea.items.get('session')).toMatchObject({ username: user.username, passwordChangeRequired: true });
    expect(local.dump()).not.toContain(user.oneTime);
    expect(sessionArea.dump()).not.toContain(user.oneTime);
    // A page asking again reads the stored flag; the connector is not asked.
    calls.length = 0;
    expect(await send({ type: 'session/get' })).toMatchObject({ signedIn: true, passwordChangeRequired: true });
    expect(calls).toEqual([]);
  });
});
