// The Salesforce sync built from the app's services and configuration (the CLI and the API route share it).
import type { App } from '../app.js';
import { loadExtraCa } from '../delivery/trust.js';
import { SalesforceSync } from './salesforce-sync.js';

export function salesforceSyncOf(app: App): SalesforceSync {
  return new SalesforceSync({
    db: app.db,
    cipher: app.cipher,
    audit: app.audit,
    consent: app.consent,
    config: app.config.salesforce,
    extraCas: loadExtraCa(app.config.extraCaFile),
    log: app.log,
  });
}
