// `outreach consent export`: the registry as NDJSON of FHIR Consent, current state or full history.
import type { Consent } from 'fhir/r4.js';
import { writeConsent } from '../../fhir/consent.js';
import type { AuthorizationRecord, ConsentRegistry } from './registry.js';

export const internalPatientSystem = 'urn:secure-outreach:patient';

/** Maps an internal patient id to the FHIR reference to write; by default an identifier in our own system. */
export type PatientReferencer = (patientId: string) => Promise<{ reference?: string; identifier?: { system: string; value: string } }>;

const byIdentifier: PatientReferencer = async (patientId) => ({ identifier: { system: internalPatientSystem, value: patientId } });

export function recordToConsent(record: AuthorizationRecord, patient: { reference?: string; identifier?: { system: string; value: string } }): Consent {
  return writeConsent({
    id: `authorization-${record.id}`,
    patient,
    purpose: record.purpose,
    channel: record.channel,
    status: record.status,
    recordedAt: record.recordedAt.toISOString(),
    source: record.source,
    ...(record.grantedAt ? { grantedAt: record.grantedAt.toISOString() } : {}),
    ...(record.expiresAt ? { expiresAt: record.expiresAt.toISOString() } : {}),
    ...(record.textVersion ? { textVersion: record.textVersion } : {}),
  });
}

export interface ConsentExportOptions {
  /** Every row ever recorded instead of the current row of each (patient, channel, purpose). */
  history?: boolean;
  patientReference?: PatientReferencer;
}

/** Yields one NDJSON line (a Consent) at a time, reading the registry page by page. */
export async function* exportConsents(registry: ConsentRegistry, options: ConsentExportOptions = {}): AsyncIterable<string> {
  const ref = options.patientReference ?? byIdentifier;
  if (options.history) {
    for await (const record of registry.allHistory()) yield JSON.stringify(recordToConsent(record, await ref(record.patientId)));
    return;
  }
  for await (const patients of registry.patients(500)) {
    for (const record of await registry.currentMany(patients)) {
      yield JSON.stringify(recordToConsent(record, await ref(record.patientId)));
    }
  }
}
