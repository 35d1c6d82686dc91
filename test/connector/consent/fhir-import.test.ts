// Consent import on sync and NDJSON export: each Consent version recorded once, re-syncs never undo a later revocation.
import type { Consent } from 'fhir/r4.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { exportConsents } from '../../../connector/consent/consent-export.js';
import { createConsentImport, type ConsentImport } from '../../../connector/consent/fhir-import.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { readConsent } from '../../../fhir/consent.js';
import { reveal } from '../../../fhir/phi.js';
import { purposeList } from '../../../connector/consent/purposes.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { truncateTables } from '../../support/truncate-tables.js';

const hmarkt = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' };
const consent = (id: string, patient: string, over: Partial<Consent> = {}): Consent => ({
  resourceType: 'Consent',
  id,
  meta: { versionId: '1', lastUpdated: '2026-02-01T00:00:00Z' },
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: `Patient/${patient}` },
  dateTime: '2026-02-01T10:00:00Z',
  provision: { type: 'permit', purpose: [hmarkt] },
  ...over,
});

describe.each(storeKinds)('consent import and export on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let registry: ConsentRegistry;
  let importer: ConsentImport;
  const cipher = createTestCipher();
  /** The store's patients as the facts repository would resolve them: (endpoint, FHIR id) -> internal id. */
  const patients = new Map([
    ['epic|pat-a', 101],
    ['epic|pat-b', 102],
    ['cerner|pat-a', 201],
  ]);

  beforeAll(async () => {
    store = await openTestStore(kind);
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await truncateTables(store.db, ['authorization_events', 'audit_log']);
    const audit = createAuditLog({ db: store.db, cipher });
    registry = new ConsentRegistry({ db: store.db, cipher, audit });
    importer = createConsentImport({ registry, resolvePatient: async (source, id) => patients.get(`${source}|${id}`) });
  });

  it('records a synced marketing authorization against the internal patient of that endpoint, with the Consent sealed as evidence', async () => {
    const c = consent('c-1', 'pat-a');
    expect(await importer.importConsents('epic', [c])).toEqual({ consents: 1, recorded: 1, unchanged: 0, unresolved: 0, invalid: 0 });
    expect(await registry.isAllowed(101, 'marketing')).toMatchObject({ allowed: true, consentVersion: 'fhir-consent/c-1/1' });
    expect(await registry.isAllowed(201, 'marketing')).toMatchObject({ allowed: false });
    const [row] = await registry.history(101);
    expect(row).toMatchObject({ source: 'fhir-consent', sourceRef: 'epic|Consent/c-1', recordedBy: 'sync', hasEvidence: true });
    expect(JSON.parse(reveal((await registry.openEvidence(row!))!))).toMatchObject({ id: 'c-1', patient: { reference: 'Patient/pat-a' } });
  });

  it('records each Consent version once, so a re-sync does not undo a later revocation', async () => {
    await importer.importConsents('epic', [consent('c-1', 'pat-a')]);
    await registry.optOut({ patientId: 101, channel: 'email', source: 'unsubscribe-link' }, { name: 'unsubscribe', role: 'system' });
    await registry.revoke({ patientId: 101, purpose: 'marketing', channel: 'email', source: 'admin' }, { name: 'ada', role: 'admin' });
    await registry.optIn({ patientId: 101, channel: 'email', source: 'admin' }, { name: 'ada', role: 'admin' });
    // The same Consent again, with only meta changed: nothing new.
    const again = consent('c-1', 'pat-a', { meta: { versionId: '1', lastUpdated: '2026-03-01T00:00:00Z' } });
    expect(await importer.importConsents('epic', [again])).toMatchObject({ recorded: 0, unchanged: 1 });
    expect(await registry.isAllowed(101, 'marketing')).toMatchObject({ allowed: false, reason: 'revoked' });
    // A changed Consent in the EHR is a new version and is recorded.
    const renewed = consent('c-1', 'pat-a', { dateTime: '2026-04-01T10:00:00Z', meta: { versionId: '2' } });
    expect(await importer.importConsents('epic', [renewed])).toMatchObject({ recorded: 1 });
    expect(await registry.isAllowed(101, 'marketing')).toMatchObject({ allowed: true });
  });

  it('applies an EHR opt-out, counts unknown patients and invalid Consents, and keeps going', async () => {
    const result = await importer.importConsents('epic', [
      consent('c-2', 'pat-b', { provision: { type: 'deny' } }),
      consent('c-3', 'pat-zzz'),
      consent('c-4', 'pat-a', { scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } }),
      consent('c-5', 'pat-a', { provision: { type: 'permit', period: { start: 'not a date' }, purpose: [hmarkt] } }),
    ]);
    expect(result).toEqual({ consents: 4, recorded: 1, unchanged: 0, unresolved: 1, invalid: 2 });
    expect(await registry.isAllowed(102, 'appointment-reminder')).toMatchObject({ allowed: false, reason: 'channel-opted-out' });
    expect(await registry.history(101)).toEqual([]);
  });

  it('lets the newer of two Consents in one batch decide, whatever order they arrive in', async () => {
    await importer.importConsents('epic', [
      consent('c-new', 'pat-a', { dateTime: '2026-05-01T00:00:00Z', provision: { type: 'deny', purpose: [hmarkt] } }),
      consent('c-old', 'pat-a', { dateTime: '2026-01-01T00:00:00Z' }),
    ]);
    expect(await registry.isAllowed(101, 'marketing')).toMatchObject({ allowed: false, reason: 'revoked' });
  });

  it('exports the current rows as NDJSON Consents that read back to the same decisions', async () => {
    await importer.importConsents('epic', [consent('c-1', 'pat-a'), consent('c-2', 'pat-b', { provision: { type: 'deny' } })]);
    await registry.grant(
      { patientId: 300, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'v9', expiresAt: new Date('2030-01-01T00:00:00Z') },
      { name: 'ada', role: 'admin' },
    );
    await registry.revoke({ patientId: 300, purpose: 'refill-reminder', channel: 'email', source: 'crm' }, { name: 'ada', role: 'admin' });
    const lines: string[] = [];
    for await (const line of exportConsents(registry)) lines.push(line);
    const consents = lines.map((l) => JSON.parse(l) as Consent);
    expect(consents).toHaveLength(4);
    const read = consents.map((c) => ({ patient: c.patient?.identifier?.value, ...readConsent({ ...c, patient: { reference: `Patient/${c.patient?.identifier?.value}` } }, { knownPurposes: purposeList }) }));
    expect(read.map((r) => [r.patient, r.authorizations.map((a) => `${a.purpose}:${a.status}`).join()])).toEqual([
      ['101', 'marketing:active'],
      ['102', '*:revoked'],
      ['300', 'marketing:active'],
      ['300', 'refill-reminder:revoked'],
    ]);
    expect(read[2]!.authorizations[0]).toMatchObject({ textVersion: 'v9', expiresAt: '2030-01-01T00:00:00.000Z' });
    const history: string[] = [];
    await registry.grant({ patientId: 300, purpose: 'marketing', channel: 'email', source: 'admin', textVersion: 'v10' }, { name: 'ada', role: 'admin' });
    for await (const line of exportConsents(registry, { history: true })) history.push(line);
    expect(history).toHaveLength(5);
  });
});
