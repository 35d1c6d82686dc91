// Consent import on sync: FHIR Consents from an endpoint become registry rows, once per Consent version.
import type { Consent } from 'fhir/r4.js';
import { canonicalConsent, readConsent } from '../../fhir/consent.js';
import { FhirError } from '../../fhir/outcome.js';
import { phi } from '../../fhir/phi.js';
import type { PatientRef } from '../audit/audit-log.js';
import { silentLog, type Log } from '../logger.js';
import { isChannel, purposeList, type Channel, type RecordPurpose } from './purposes.js';
import { evidenceHashOf, importKey, patientKey, type AuthorizationChange, type ConsentRegistry } from './registry.js';

/** Finds the store's internal patient id for a patient's logical id at a FHIR endpoint (the facts repository's `idOf`). */
export type PatientResolver = (source: string, fhirPatientId: string) => Promise<PatientRef | undefined>;

export interface ConsentImportResult {
  consents: number;
  /** Registry rows appended. */
  recorded: number;
  /** Authorizations whose Consent version was already recorded. */
  unchanged: number;
  /** Consents whose patient is not (yet) in the store. */
  unresolved: number;
  /** Consents that are not privacy consents, or hold an invalid date or channel. */
  invalid: number;
}

export interface ConsentImport {
  /** Imports a batch and says what became of it. */
  importConsents(source: string, consents: readonly Consent[]): Promise<ConsentImportResult>;
  /** The FactsSink / ConsentSink signature (the same import, result logged). */
  writeConsents(source: string, consents: readonly Consent[]): Promise<void>;
}

export interface ConsentImportDeps {
  registry: ConsentRegistry;
  resolvePatient: PatientResolver;
  log?: Log;
}

const syncActor = { name: 'sync', role: 'system' };

const isoOrUndefined = (value: string | undefined): Date | undefined | null => {
  if (value === undefined) return undefined;
  const d = new Date(value);
  return Number.isFinite(d.getTime()) ? d : null;
};

/** The handler the store's FactsSink forwards `writeConsents` to. */
export function createConsentImport({ registry, resolvePatient, log = silentLog }: ConsentImportDeps): ConsentImport {
  const importConsents = async (source: string, consents: readonly Consent[]): Promise<ConsentImportResult> => {
    const result: ConsentImportResult = { consents: consents.length, recorded: 0, unchanged: 0, unresolved: 0, invalid: 0 };
    const candidates: Array<{ change: AuthorizationChange; key: string; hash: string; sourceRef: string }> = [];
    const resolved = new Map<string, string | undefined>();
    // Older Consents first, so that when two Consents speak of the same purpose the newer one is the current row.
    const when = (c: Consent) => (c.dateTime && Number.isFinite(Date.parse(c.dateTime)) ? Date.parse(c.dateTime) : 0);
    const ordered = [...consents].sort((a, b) => when(a) - when(b));
    for (const consent of ordered) {
      let reading;
      try {
        reading = readConsent(consent, { knownPurposes: purposeList });
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        result.invalid += 1;
        log.warn({ source, code: err.code, path: String(err.details.path ?? '') }, 'consent not imported');
        continue;
      }
      if (!resolved.has(reading.patientId)) {
        const id = await resolvePatient(source, reading.patientId);
        resolved.set(reading.patientId, id == null ? undefined : patientKey(id));
      }
      const patientId = resolved.get(reading.patientId);
      if (!patientId) {
        result.unresolved += 1;
        continue;
      }
      const evidence = canonicalConsent(consent);
      const hash = evidenceHashOf(evidence);
      const sourceRef = `${source}|Consent/${consent.id ?? `sha256:${hash.toString('hex').slice(0, 32)}`}`;
      const changes: typeof candidates = [];
      let bad = false;
      for (const a of reading.authorizations) {
        const grantedAt = isoOrUndefined(a.grantedAt);
        const expiresAt = isoOrUndefined(a.expiresAt);
        if (!isChannel(a.channel) || grantedAt === null || expiresAt === null || (grantedAt && expiresAt && expiresAt <= grantedAt)) {
          bad = true;
          break;
        }
        changes.push({
          key: importKey(sourceRef, patientId, a.channel, a.purpose),
          hash: hash.toString('hex'),
          sourceRef,
          change: {
            patientId,
            purpose: a.purpose as RecordPurpose,
            channel: a.channel as Channel,
            status: a.status,
            grantedAt: grantedAt ?? null,
            expiresAt: expiresAt ?? null,
            source: 'fhir-consent',
            sourceRef,
            textVersion: a.textVersion ?? null,
            evidence: phi(evidence),
            evidenceHash: hash,
          },
        });
      }
      if (bad) {
        result.invalid += 1;
        log.warn({ source, path: 'Consent.provision' }, 'consent not imported: invalid channel or period');
        continue;
      }
      candidates.push(...changes);
    }
    const known = await registry.importedVersions(candidates.map((c) => c.sourceRef));
    // Within one batch the last mention of a key wins, as it would across batches.
    const fresh = new Map<string, AuthorizationChange>();
    for (const c of candidates) {
      if (known.get(c.key) === c.hash) {
        result.unchanged += 1;
        continue;
      }
      if (fresh.has(c.key)) fresh.delete(c.key);
      fresh.set(c.key, c.change);
    }
    for (let i = 0, list = [...fresh.values()]; i < list.length; i += 500) {
      result.recorded += (await registry.record(list.slice(i, i + 500), syncActor)).length;
    }
    log.info({ source, ...result }, 'consents imported');
    return result;
  };
  return {
    importConsents,
    writeConsents: async (source, consents) => void (await importConsents(source, consents)),
  };
}
