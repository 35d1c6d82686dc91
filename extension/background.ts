// The MV3 service worker: the only part of the extension that talks to the connector; holds the session, signs out on idle, registers the EHR script.
import browser, { type Runtime } from 'webextension-polyfill';
import { syncEhrScripts } from './background/ehr-scripts.js';
import { watchIdle } from './background/idle-sign-out.js';
import { messageRouter } from './background/message-router.js';
import { notifyTabs } from './background/session-broadcast.js';
import { sessionStore } from './background/session-store.js';

const store = sessionStore(browser.storage.local, browser.storage.session);
const router = messageRouter({
  store,
  extensionId: browser.runtime.id,
  extensionUrl: browser.runtime.getURL('/'),
  fetch: (input, init) => fetch(input, init),
  syncEhrOrigins: (origins) => syncEhrScripts(browser, origins),
  notifySessionChanged: async () => {
    const { ehrOrigins } = await store.settings();
    await notifyTabs(browser.tabs, browser.runtime.getManifest().host_permissions ?? [], ehrOrigins);
  },
});

browser.runtime.onMessage.addListener((message: unknown, sender: Runtime.MessageSender) => router.receive(message, sender));

const idle = watchIdle(browser.idle, async () => (await store.settings()).idleSeconds, router.signOut);

// A grant removed in the browser's UI must also remove the script from that origin.
browser.permissions.onRemoved.addListener(async () => {
  const { ehrOrigins } = await store.settings();
  await syncEhrScripts(browser, ehrOrigins);
});

browser.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && 'idleSeconds' in changes) void idle.applyLimit();
});

async function start(): Promise<void> {
  await idle.applyLimit();
  const { ehrOrigins } = await store.settings();
  await syncEhrScripts(browser, ehrOrigins);
  const side = (globalThis as { chrome?: { sidePanel?: { setPanelBehavior(o: { openPanelOnActionClick: boolean }): Promise<void> } } }).chrome?.sidePanel;
  await side?.setPanelBehavior({ openPanelOnActionClick: false }).catch(() => undefined);
}

void start();
