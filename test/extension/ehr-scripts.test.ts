// Registering the EHR content script on exactly the origins an admin granted, and removing it where the grant is gone.
import type { Scripting } from 'webextension-polyfill';
import { describe, expect, it } from 'vitest';
import { originPattern, syncEhrScripts, type EhrScriptApis } from '../../extension/background/ehr-scripts.js';

/** The browser's registry of dynamic content scripts and granted origins, in memory. */
function browserState(granted: string[]) {
  const scripts = new Map<string, Scripting.RegisteredContentScript>();
  const apis: EhrScriptApis = {
    permissions: { contains: async ({ origins = [] }) => origins.every((o) => granted.includes(o)) },
    scripting: {
      getRegisteredContentScripts: async () => [...scripts.values()],
      registerContentScripts: async (list) => {
        for (const s of list) {
          if (scripts.has(s.id)) throw new Error(`duplicate script id ${s.id}`);
          scripts.set(s.id, s);
        }
      },
      unregisterContentScripts: async (filter) => {
        for (const id of filter?.ids ?? [...scripts.keys()]) scripts.delete(id);
      },
    },
  };
  return { apis, scripts, granted };
}

describe('EHR content script registration', () => {
  it('turns an origin into a match pattern, refusing paths, credentials and plain http off loopback', () => {
    expect(originPattern('https://ehr.example.org')).toBe('https://ehr.example.org/*');
    expect(originPattern('https://ehr.example.org:8443/')).toBe('https://ehr.example.org:8443/*');
    expect(originPattern('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/*');
    expect(originPattern('http://ehr.example.org')).toBeNull();
    expect(originPattern('https://ehr.example.org/app')).toBeNull();
    expect(originPattern('https://u:p@ehr.example.org')).toBeNull();
    expect(originPattern('not a url')).toBeNull();
  });

  it('registers only granted origins, keeps existing registrations, and drops revoked ones', async () => {
    const state = browserState(['https://a.example.org/*', 'https://b.example.org/*']);
    expect(await syncEhrScripts(state.apis, ['https://a.example.org', 'https://b.example.org', 'https://not-granted.example.org'])).toEqual([
      'https://a.example.org/*',
      'https://b.example.org/*',
    ]);
    expect([...state.scripts.values()].map((s) => [s.matches, s.js])).toEqual([
      [['https://a.example.org/*'], ['content/ehr.js']],
      [['https://b.example.org/*'], ['content/ehr.js']],
    ]);
    // Run again (worker restart): nothing is registered twice.
    await syncEhrScripts(state.apis, ['https://a.example.org', 'https://b.example.org']);
    expect(state.scripts.size).toBe(2);
    // The admin removes b in the browser's UI.
    state.granted.splice(state.granted.indexOf('https://b.example.org/*'), 1);
    await syncEhrScripts(state.apis, ['https://a.example.org', 'https://b.example.org']);
    expect([...state.scripts.values()].flatMap((s) => s.matches)).toEqual(['https://a.example.org/*']);
  });
});
