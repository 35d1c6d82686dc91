// The MV3 service worker: the only part of the extension that talks to the connector; holds the session, signs out on idle, registers the EHR script.
import browser, { type Runtime } from 'webextension-polyfill';
import { syncEhrScripts } from './background/ehr-scripts.js';
import { messageRouter } from './background/message-router.js';
import { sessionStore } from './background/session-store.js';

const store = sessionStore(browser.storage.local, browser.storage.session);
const router = messageRouter({
  store,
  extensionId: browser.runtime.id,
  extensionUrl: browser.runtime.getURL('/'),
  fetch: (input, init) => fetch(input, init),
  syncEhrOrigins: (origins) => syncEhrScripts(browser, origins),
});

browser.runtime.onMessage.addListener((message: unknown, sender: Runtime.MessageSender) => router.receive(message, sender));

async function applyIdleLimit(): Promise<void> {
  const { idleSeconds } = await store.settings();
  browser.idle.setDetectionInterval(idleSeconds);
}

// Idle or a locked screen ends the session: a walk-away must not leave a signed-in PHI tool behind.
browser.idle.onStateChanged.addListener((state) => {
  if (state !== 'active') void router.signOut();
});

// A grant removed in the browser's UI must also remove the script from that origin.
browser.permissions.onRemoved.addListener(async () => {
  const { ehrOrigins } = await store.settings();
  await syncEhrScripts(browser, ehrOrigins);
});

browser.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && 'idleSeconds' in changes) void applyIdleLimit();
});

async function start(): Promise<void> {
  await applyIdleLimit();
  const { ehrOrigins } = await store.settings();
  await syncEhrScripts(browser, ehrOrigins);
  const side = (globalThis as { chrome?: { sidePanel?: { setPanelBehavior(o: { openPanelOnActionClick: boolean }): Promise<void> } } }).chrome?.sidePanel;
  await side?.setPanelBehavior({ openPanelOnActionClick: false }).catch(() => undefined);
}

void start();
