// Tells the content scripts in open Salesforce and EHR tabs that the session changed (sign-in, sign-out, idle), so a badge shown before sign-in does not stay stale.
import type { Tabs } from 'webextension-polyfill';
import { originPattern } from './ehr-scripts.js';

/** The one message the background sends to content scripts. It carries nothing but its type. */
export const sessionChangedMessage = { type: 'session/changed' } as const;

export async function notifyTabs(tabs: Pick<Tabs.Static, 'query' | 'sendMessage'>, hostPatterns: string[], ehrOrigins: string[]): Promise<number> {
  const url = [...hostPatterns, ...ehrOrigins.map(originPattern).filter((p): p is string => p !== null)];
  if (url.length === 0) return 0;
  const open = await tabs.query({ url });
  let told = 0;
  for (const tab of open) {
    if (tab.id === undefined) continue;
    // A tab without our script (loaded before install, or a restricted page) just does not answer.
    await tabs.sendMessage(tab.id, sessionChangedMessage).then(
      () => told++,
      () => undefined,
    );
  }
  return told;
}
