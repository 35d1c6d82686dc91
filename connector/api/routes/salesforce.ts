// The Salesforce route: the connection state as the sync's store records it (no call to the org on a status read).
import type { App } from '../../app.js';
import { salesforceSyncOf } from '../../salesforce/app-sync.js';
import type { Handlers } from '../handler.js';

export function salesforceHandlers(app: App): Handlers {
  const sync = salesforceSyncOf(app);
  return {
    salesforceStatus: async () => sync.status(),
  };
}
