// Telling open Salesforce and EHR tabs that the session changed: only tabs on our hosts, with a message that carries nothing else.
import type { Tabs } from 'webextension-polyfill';
import { describe, expect, it } from 'vitest';
import { notifyTabs, sessionChangedMessage } from '../../extension/background/session-broadcast.js';

describe('session broadcast', () => {
  it('messages the tabs on Salesforce hosts and granted EHR origins, and survives tabs without our script', async () => {
    const queried: string[][] = [];
    const sent: [number, unknown][] = [];
    const tabs = {
      query: async ({ url }: { url: string[] }) => {
        queried.push(url);
        return [{ id: 1 }, { id: 2 }, { id: undefined }] as Tabs.Tab[];
      },
      sendMessage: async (id: number, message: unknown) => {
        if (id === 2) throw new Error('Could not establish connection. Receiving end does not exist.');
        sent.push([id, message]);
      },
    } as unknown as Pick<Tabs.Static, 'query' | 'sendMessage'>;
    const told = await notifyTabs(tabs, ['https://*.lightning.force.com/*'], ['https://ehr.example.org', 'http://not-allowed.example.org']);
    expect(told).toBe(1);
    expect(queried).toEqual([['https://*.lightning.force.com/*', 'https://ehr.example.org/*']]);
    expect(sent).toEqual([[1, { type: 'session/changed' }]]);
    expect(Object.keys(sessionChangedMessage)).toEqual(['type']);
  });
});
