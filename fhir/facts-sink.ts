// Where a sync delivers what it read: patient facts in batches, quarantined resources, consents and sync state.
import type { Consent } from 'fhir/r4.js';
import type { PatientFacts } from './patient-facts.js';

/** A resource or line that failed validation. Never holds resource values. */
export interface QuarantineItem {
  endpoint: string;
  resourceType?: string;
  resourceId?: string;
  /** The failing path (e.g. `Observation.valueQuantity.value`) or `(json)` for unparsable input. */
  path: string;
  reason: string;
  /** For Bulk Data: the NDJSON file URL and 1-based line number. */
  file?: string;
  line?: number;
  at: string;
}

export interface SyncState {
  endpoint: string;
  /** The `transactionTime` of the last complete $export, or the start time of the last complete search sync. */
  since?: string;
  mode?: 'search' | 'bulk';
  updatedAt: string;
}

export interface FactsSink {
  /** Existing facts of these source patients (for incremental merges); absent ids are new patients. */
  loadFacts(source: string, patientIds: readonly string[]): Promise<Map<string, PatientFacts>>;
  /** Writes (inserts or replaces) a batch of facts; implementations seal the batch in one transaction. */
  writeFacts(batch: readonly PatientFacts[]): Promise<void>;
  /** Validated FHIR Consent resources, for the authorization registry. */
  writeConsents(source: string, consents: readonly Consent[]): Promise<void>;
  quarantine(items: readonly QuarantineItem[]): Promise<void>;
  getSyncState(endpoint: string): Promise<SyncState | undefined>;
  setSyncState(state: SyncState): Promise<void>;
}
