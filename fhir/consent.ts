// FHIR R4 Consent <-> HIPAA authorization: privacy consents with purpose provisions (HMARKT) read and written both ways.
import type { CodeableConcept, Coding, Consent, ConsentProvision } from 'fhir/r4.js';
import { FhirError } from './outcome.js';

export const consentScopeSystem = 'http://terminology.hl7.org/CodeSystem/consentscope';
export const loincSystem = 'http://loinc.org';
/** LOINC 59284-0: Consent Document (Patient Consent). */
export const consentCategoryCode = '59284-0';
export const actReasonSystem = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const consentPolicySystem = 'http://terminology.hl7.org/CodeSystem/consentpolicycodes';
/** 45 CFR 164.508(a)(3): an authorization is required for any use or disclosure of PHI for marketing. */
export const hipaaMarketingRuleUri = 'https://www.ecfr.gov/current/title-45/section-164.508#p-164.508(a)(3)';
export const purposeSystem = 'urn:secure-outreach:purpose';
export const channelExtension = 'urn:secure-outreach:fhir:StructureDefinition/consent-channel';
export const textVersionExtension = 'urn:secure-outreach:fhir:StructureDefinition/authorization-text-version';
export const sourceExtension = 'urn:secure-outreach:fhir:StructureDefinition/authorization-source';

/** The purpose of a channel-wide record (a channel opt-out when revoked), and its code in FHIR. */
export const channelWidePurpose = '*';
const channelWideCode = 'channel-wide';

/** Our purposes that v3-ActReason names (the rest travel under `urn:secure-outreach:purpose`). */
const actReasonByPurpose: Record<string, string> = {
  marketing: 'HMARKT',
  'treatment-reminder': 'TREAT',
  'appointment-reminder': 'TREAT',
  'refill-reminder': 'TREAT',
  'screening-reminder': 'TREAT',
  'care-gap-reminder': 'TREAT',
};
const purposeByActReason: Record<string, string> = { HMARKT: 'marketing', TREAT: 'treatment-reminder' };

export type ConsentAuthorizationStatus = 'active' | 'revoked' | 'expired';

/** One authorization as read from or written to a Consent: plain values, no connector types. */
export interface ConsentAuthorization {
  /** Our purpose (`marketing`, `appointment-reminder`, ...) or `*` for the whole channel. */
  purpose: string;
  channel: string;
  status: ConsentAuthorizationStatus;
  grantedAt?: string;
  expiresAt?: string;
  textVersion?: string;
}

export interface ConsentReading {
  consentId?: string;
  /** The logical id of the patient at the source (`Patient/<id>` reference). */
  patientId: string;
  authorizations: ConsentAuthorization[];
}

export interface ConsentReadOptions {
  /** Purposes the registry knows; codes of other purposes are ignored. */
  knownPurposes: readonly string[];
  /** The channel when the Consent names none. */
  defaultChannel?: string;
}

const isPrivacyConsent = (c: Consent) =>
  (c.scope?.coding ?? []).some((x) => x.system === consentScopeSystem && x.code === 'patient-privacy');

/** The logical id out of `Patient/<id>` or an absolute `.../Patient/<id>[/_history/n]` reference. */
export function patientIdOf(reference: string | undefined): string | undefined {
  const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference ?? '');
  return m?.[1];
}

function purposesOf(codings: readonly Coding[] | undefined, known: ReadonlySet<string>): string[] {
  const ours = (codings ?? []).filter((c) => c.system === purposeSystem && c.code).map((c) => (c.code === channelWideCode ? channelWidePurpose : c.code!));
  // Our own coding is exact; v3-ActReason is the fallback for Consents written by an EHR.
  const found = ours.length
    ? ours
    : (codings ?? []).filter((c) => c.system === actReasonSystem && c.code && purposeByActReason[c.code]).map((c) => purposeByActReason[c.code!]!);
  return [...new Set(found.filter((p) => p === channelWidePurpose || known.has(p)))];
}

/**
 * Reads the authorizations a privacy Consent expresses. A deny with no purpose is a channel opt-out; a permit
 * with no purpose grants nothing (marketing needs its own purpose); nested provisions override their parent for
 * the purposes they name. `rejected` and `entered-in-error` revoke what the Consent names; `draft` and `proposed`
 * express nothing yet; `inactive` means the permission ended (expired).
 */
export function readConsent(consent: Consent, options: ConsentReadOptions): ConsentReading {
  if (consent.resourceType !== 'Consent') throw new FhirError('FHIR_INVALID_RESOURCE', 'not a Consent resource', { path: 'resourceType' });
  if (!isPrivacyConsent(consent)) {
    throw new FhirError('FHIR_INVALID_RESOURCE', 'Consent.scope is not patient-privacy', { path: 'Consent.scope' });
  }
  const patientId = patientIdOf(consent.patient?.reference);
  if (!patientId) throw new FhirError('FHIR_INVALID_RESOURCE', 'Consent.patient is not a Patient reference', { path: 'Consent.patient' });
  const known = new Set(options.knownPurposes);
  const channel = consent.extension?.find((e) => e.url === channelExtension)?.valueCode ?? options.defaultChannel ?? 'email';
  const textVersion =
    consent.extension?.find((e) => e.url === textVersionExtension)?.valueString ??
    (consent.id ? `fhir-consent/${consent.id}/${consent.meta?.versionId ?? '1'}` : undefined);
  const out: ConsentReading = { patientId, authorizations: [], ...(consent.id ? { consentId: consent.id } : {}) };
  if (consent.status === 'draft' || consent.status === 'proposed' || !consent.provision) return out;

  // Each purpose takes the decision of the deepest provision that names it.
  const decided = new Map<string, { type: 'permit' | 'deny'; start?: string; end?: string }>();
  const walk = (p: ConsentProvision, inherited: 'permit' | 'deny' | undefined, depth: number, period: { start?: string; end?: string }) => {
    const type = p.type ?? (depth === 0 ? inherited : inherited === 'permit' ? 'deny' : 'permit');
    if (!type) return;
    const span = { ...period, ...(p.period?.start ? { start: p.period.start } : {}), ...(p.period?.end ? { end: p.period.end } : {}) };
    const purposes = purposesOf(p.purpose, known);
    if (purposes.length === 0 && depth === 0 && type === 'deny') {
      if (!p.provision?.length) decided.set(channelWidePurpose, { type, ...span });
      // A deny-all base with exceptions: every purpose is revoked except those the exceptions permit.
      else for (const k of known) decided.set(k, { type, ...span });
    }
    for (const purpose of purposes) decided.set(purpose, { type, ...span });
    for (const child of p.provision ?? []) walk(child, type, depth + 1, span);
  };
  walk(consent.provision, undefined, 0, { ...(consent.dateTime ? { start: consent.dateTime } : {}) });

  for (const [purpose, d] of decided) {
    let status: ConsentAuthorizationStatus;
    if (consent.status === 'active') status = d.type === 'permit' ? 'active' : 'revoked';
    else if (consent.status === 'inactive') {
      // An ended opt-out is not an opt-in: only an explicit permit lifts a channel opt-out.
      if (purpose === channelWidePurpose) continue;
      status = 'expired';
    } else status = 'revoked';
    out.authorizations.push({
      purpose,
      channel,
      status,
      ...(d.start ? { grantedAt: d.start } : {}),
      ...(d.end ? { expiresAt: d.end } : {}),
      ...(textVersion ? { textVersion } : {}),
    });
  }
  return out;
}

export interface ConsentWriteInput extends ConsentAuthorization {
  /** The Consent id to write (e.g. the registry row id). */
  id?: string;
  /** `Patient/<id>` or an identifier-based reference. */
  patient: { reference?: string; identifier?: { system: string; value: string } };
  /** When the row was recorded: the Consent's dateTime when no grant time is known. */
  recordedAt: string;
  source?: string;
}

function purposeConcept(purpose: string): Coding[] {
  if (purpose === channelWidePurpose) return [{ system: purposeSystem, code: channelWideCode }];
  const act = actReasonByPurpose[purpose];
  return [{ system: purposeSystem, code: purpose }, ...(act ? [{ system: actReasonSystem, code: act }] : [])];
}

/**
 * Writes one authorization as a Consent: active grant → active/permit, revocation → active/deny (an opt-out
 * directive), expiry → inactive/permit with the period end. A revoked channel-wide record is a deny with no purpose.
 */
export function writeConsent(a: ConsentWriteInput): Consent {
  const channelWideDeny = a.purpose === channelWidePurpose && a.status === 'revoked';
  const policyRule: CodeableConcept = {
    coding: [{ system: consentPolicySystem, code: 'hipaa-auth', display: 'HIPAA Authorization' }],
    text: 'HIPAA authorization, 45 CFR 164.508(a)(3)',
  };
  const provision: ConsentProvision = {
    type: a.status === 'revoked' ? 'deny' : 'permit',
    ...(a.grantedAt || a.expiresAt ? { period: { ...(a.grantedAt ? { start: a.grantedAt } : {}), ...(a.expiresAt ? { end: a.expiresAt } : {}) } } : {}),
    ...(channelWideDeny ? {} : { purpose: purposeConcept(a.purpose) }),
  };
  return {
    resourceType: 'Consent',
    ...(a.id ? { id: a.id } : {}),
    extension: [
      { url: channelExtension, valueCode: a.channel },
      ...(a.textVersion ? [{ url: textVersionExtension, valueString: a.textVersion }] : []),
      ...(a.source ? [{ url: sourceExtension, valueCode: a.source }] : []),
    ],
    status: a.status === 'expired' ? 'inactive' : 'active',
    scope: { coding: [{ system: consentScopeSystem, code: 'patient-privacy' }] },
    category: [{ coding: [{ system: loincSystem, code: consentCategoryCode }] }],
    patient: a.patient,
    dateTime: a.grantedAt ?? a.recordedAt,
    policy: [{ uri: hipaaMarketingRuleUri }],
    policyRule,
    provision,
  };
}

/** Canonical JSON (sorted keys, no `meta`) of a Consent: what the evidence hash covers, stable across re-syncs. */
export function canonicalConsent(consent: Consent): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .filter((k) => k !== 'meta')
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(sort(consent));
}
