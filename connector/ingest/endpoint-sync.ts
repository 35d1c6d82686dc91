// Runs FHIR work for a registered endpoint inside the app: a sync into the sealed facts store, and a connection check.
import { Agent } from 'undici';
import { FhirClient } from '../../fhir/client.js';
import type { FetchOptions } from '../../fhir/transport.js';
import { loadExtraCa, trustedCas } from '../delivery/trust.js';
import { SmartBackendTokens, type EndpointConfig } from '../../fhir/endpoint.js';
import type { ExportLevel } from '../../fhir/bulk-export.js';
import { syncEndpoint, type SyncMode, type SyncProgress, type SyncSummary } from '../../fhir/sync.js';
import type { App } from '../app.js';
import { EndpointRegistry } from './endpoint-registry.js';

type IngestApp = Pick<App, 'db' | 'cipher' | 'facts' | 'log' | 'config'>;

export function endpointRegistry(app: IngestApp): EndpointRegistry {
  return new EndpointRegistry(app.db, app.cipher, { allowOpen: app.config.openFhirEndpoints });
}

/**
 * Runs `fn` with the fetch options FHIR requests need: with OUTREACH_EXTRA_CA_FILE an undici Agent that trusts
 * Node's roots plus those CAs (added, never replacing; verification stays on). The Agent is closed afterwards.
 */
export async function withFhirTrust<T>(config: IngestApp['config'], fn: (fetchOptions: FetchOptions | undefined) => Promise<T>): Promise<T> {
  const extra = loadExtraCa(config.extraCaFile);
  if (extra.length === 0) return fn(undefined);
  const dispatcher = new Agent({ connect: { ca: trustedCas(extra) } });
  try {
    return await fn({ dispatcher });
  } finally {
    await dispatcher.close();
  }
}

export interface EndpointSyncOptions {
  mode?: SyncMode;
  since?: string;
  full?: boolean;
  /** Bulk mode: export this Group instead of all patients. */
  group?: string;
  /** Bulk mode: system-level export. */
  system?: boolean;
  onProgress?: (progress: SyncProgress) => void;
  /** Called after each committed batch with the source patient ids (the audit log hooks in here). */
  onPatientsSynced?: (patientIds: readonly string[]) => void | Promise<void>;
}

/** Syncs a registered endpoint into the app's facts store (sealed), quarantine and sync state. */
export async function syncRegisteredEndpoint(app: IngestApp, name: string, options: EndpointSyncOptions = {}): Promise<SyncSummary> {
  const endpoint = await endpointRegistry(app).get(name);
  const exportLevel: ExportLevel = options.group ? { kind: 'group', groupId: options.group } : options.system ? { kind: 'system' } : { kind: 'patient' };
  return withFhirTrust(app.config, (fetchOptions) => syncEndpoint(endpoint, app.facts, {
    mode: options.mode ?? 'search',
    ...(fetchOptions ? { clientOptions: { fetchOptions } } : {}),
    ...(options.since ? { since: options.since } : {}),
    ...(options.full ? { full: true } : {}),
    exportLevel,
    log: app.log,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.onPatientsSynced ? { onPatientsSynced: options.onPatientsSynced } : {}),
  }));
}

export interface EndpointCheck {
  endpoint: string;
  baseUrl: string;
  auth: 'smart-backend' | 'none';
  tokenUrl?: string;
  discoveredFrom?: string;
  /** Seconds the issued token lives, and the scopes the server granted. */
  token?: { expiresInSeconds: number; scope?: string };
  fhirVersion?: string;
  software?: string;
  /** A one-page search of Patient answered. */
  patientSearch: boolean;
}

/** Checks an endpoint end to end: discovery, a token, the CapabilityStatement and one Patient search page. */
export async function checkEndpoint(app: IngestApp, name: string): Promise<EndpointCheck> {
  const endpoint = await endpointRegistry(app).get(name);
  return withFhirTrust(app.config, (fetchOptions) => runChecks(app, endpoint, fetchOptions));
}

async function runChecks(app: IngestApp, endpoint: EndpointConfig, fetchOptions: FetchOptions | undefined): Promise<EndpointCheck> {
  const check: EndpointCheck = { endpoint: endpoint.name, baseUrl: endpoint.baseUrl, auth: endpoint.auth, patientSearch: false };
  let client: FhirClient;
  if (endpoint.auth === 'smart-backend') {
    const tokens = new SmartBackendTokens(endpoint, { log: app.log, ...(fetchOptions ? { fetchOptions } : {}) });
    const discovered = await tokens.smartConfiguration();
    check.tokenUrl = discovered.tokenEndpoint;
    check.discoveredFrom = discovered.discoveredFrom;
    const token = await tokens.accessToken();
    check.token = { expiresInSeconds: Math.round((token.expiresAt - Date.now()) / 1000), ...(token.scope ? { scope: token.scope } : {}) };
    client = new FhirClient(endpoint, { tokens, log: app.log, pageSize: 1, ...(fetchOptions ? { fetchOptions } : {}) });
  } else {
    client = new FhirClient(endpoint, { log: app.log, pageSize: 1, ...(fetchOptions ? { fetchOptions } : {}) });
  }
  const cs = await client.capabilityStatement();
  if (cs.fhirVersion) check.fhirVersion = cs.fhirVersion;
  if (cs.software?.name) check.software = [cs.software.name, cs.software.version].filter(Boolean).join(' ');
  for await (const page of client.searchPages('Patient', { _count: '1' })) {
    check.patientSearch = page.resourceType === 'Bundle';
    break;
  }
  return check;
}
