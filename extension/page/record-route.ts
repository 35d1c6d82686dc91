// Reads which Salesforce record a Lightning URL shows (Contact or Lead and its id); the id is a CRM key, not PHI.
import { lightning } from '../selectors.js';

export interface RecordRoute {
  object: 'Contact' | 'Lead';
  recordId: string;
}

export function recordRoute(url: string | URL): RecordRoute | null {
  const { pathname } = typeof url === 'string' ? new URL(url) : url;
  const m = lightning.recordPath.exec(pathname);
  return m ? { object: m[1] as RecordRoute['object'], recordId: m[2]! } : null;
}
