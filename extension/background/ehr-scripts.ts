// Registers the EHR content script on the origins an admin granted at runtime (optional host permissions), and drops it where the grant is gone.
import type { Permissions, Scripting } from 'webextension-polyfill';

const idPrefix = 'ehr-';

/** "https://ehr.example.org" or "https://ehr.example.org/" → the match pattern "https://ehr.example.org/*". */
export function originPattern(origin: string): string | null {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost'))) return null;
    if (url.pathname !== '/' || url.search || url.hash || url.username) return null;
    return `${url.protocol}//${url.host}/*`;
  } catch {
    return null;
  }
}

const scriptId = (pattern: string) => idPrefix + pattern.replace(/[^A-Za-z0-9]+/g, '_');

export interface EhrScriptApis {
  scripting: Pick<Scripting.Static, 'getRegisteredContentScripts' | 'registerContentScripts' | 'unregisterContentScripts'>;
  permissions: Pick<Permissions.Static, 'contains'>;
}

/** Makes the registered EHR scripts match exactly the granted origins; returns the patterns registered. */
export async function syncEhrScripts(apis: EhrScriptApis, origins: string[]): Promise<string[]> {
  const wanted: string[] = [];
  for (const origin of origins) {
    const pattern = originPattern(origin);
    if (pattern && (await apis.permissions.contains({ origins: [pattern] }))) wanted.push(pattern);
  }
  const existing = (await apis.scripting.getRegisteredContentScripts()).filter((s) => s.id.startsWith(idPrefix));
  const stale = existing.filter((s) => !wanted.some((p) => scriptId(p) === s.id)).map((s) => s.id);
  if (stale.length) await apis.scripting.unregisterContentScripts({ ids: stale });
  const fresh = wanted.filter((p) => !existing.some((s) => s.id === scriptId(p)));
  if (fresh.length) {
    await apis.scripting.registerContentScripts(
      fresh.map((p) => ({ id: scriptId(p), matches: [p], js: ['content/ehr.js'], runAt: 'document_idle' as const, persistAcrossSessions: true })),
    );
  }
  return wanted;
}
