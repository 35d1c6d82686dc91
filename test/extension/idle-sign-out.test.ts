// Idle or a locked screen ends the session, locally and at the connector; the idle limit follows the admin setting.
import type { Idle } from 'webextension-polyfill';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchIdle, type IdleApi } from '../../extension/background/idle-sign-out.js';
import { messageRouter } from '../../extension/background/message-router.js';
import { defaultIdleSeconds, sessionStore } from '../../extension/background/session-store.js';
import { users } from '../e2e/support/outreach-fixtures.js';
import { recordingFetch, startTestConnector, type TestConnector } from './support/connector-client.js';
import { MemoryStorageArea } from './support/memory-storage.js';

/** chrome.idle in memory: records the detection interval, and lets the test change the machine's state. */
function idleSource() {
  const listeners: ((state: Idle.IdleState) => void)[] = [];
  const intervals: number[] = [];
  const api = {
    setDetectionInterval: (seconds: number) => void intervals.push(seconds),
    onStateChanged: { addListener: (l: (state: Idle.IdleState) => void) => void listeners.push(l) },
  } as unknown as IdleApi;
  return { api, intervals, become: (state: Idle.IdleState) => listeners.forEach((l) => l(state)) };
}

describe('idle sign-out', () => {
  let world: TestConnector;
  beforeAll(async () => {
    world = await startTestConnector();
  }, 60_000);
  afterAll(() => world?.close());

  it('signs out at the connector and drops the token when the screen locks or the user walks away', async () => {
    const local = new MemoryStorageArea();
    const session = new MemoryStorageArea();
    const store = sessionStore(local.asArea(), session.asArea());
    const extensionUrl = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop/';
    const { fetch, calls } = recordingFetch();
    const router = messageRouter({ store, extensionId: 'abcdefghijklmnopabcdefghijklmnop', extensionUrl, fetch, syncEhrOrigins: async () => [] });
    const page = { id: 'abcdefghijklmnopabcdefghijklmnop', url: `${extensionUrl}popup/index.html` };
    await router.receive({ type: 'settings/set-connector', url: world.url }, page);
    const source = idleSource();
    const idle = watchIdle(source.api, async () => (await store.settings()).idleSeconds, router.signOut);

    await idle.applyLimit();
    expect(source.intervals).toEqual([defaultIdleSeconds]);
    await local.set({ idleSeconds: 300 });
    await idle.applyLimit();
    expect(source.intervals.at(-1)).toBe(300);

    for (const state of ['idle', 'locked'] as const) {
      await router.receive({ type: 'session/sign-in', username: users.marketer.username, password: users.marketer.password }, page);
      expect(session.items.has('session')).toBe(true);
      source.become('active');
      expect(session.items.has('session')).toBe(true);
      const token = (session.items.get('session') as { token: string }).token;
      const logouts = calls.filter((c) => c.method === 'DELETE' && c.path === '/session').length;
      source.become(state);
      await expect.poll(() => session.items.has('session')).toBe(false);
      expect(calls.filter((c) => c.method === 'DELETE' && c.path === '/session' && c.status === 204)).toHaveLength(logouts + 1);
      // The connector ended the session too: the token no longer works.
      const after = await globalThis.fetch(`${world.url}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } });
      expect(after.status).toBe(401);
    }
  });
});
