// Patient facts from Synthea bundles, checked field by field against the bundles, and the fold's incremental rules.
import type { Bundle } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { ageOn, emptyFacts, FactsFolder, factsFromBundles } from '../../fhir/derive-facts.js';
import { validateResource, type ReadResource } from '../../fhir/resources.js';
import { flattenForServer, syntheaBundles, syntheaPatientBundle } from './support/synthea.js';

const now = new Date('2020-01-01T00:00:00Z');
const all = factsFromBundles(syntheaBundles(), { source: 'demo', now });
const factsOf = (id: string) => all.facts.get(id)!;
const sct = (code: string, display: string) => ({ system: 'http://snomed.info/sct', code, display });

const valid = (r: unknown): ReadResource => {
  const v = validateResource(r);
  if (v.ok !== true) throw new Error(`fixture invalid: ${JSON.stringify(v)}`);
  return v.resource;
};

describe('facts from the Synthea fixtures', () => {
  it('derives one patient per patient bundle, with nothing invalid', () => {
    expect(all.facts.size).toBe(13);
    expect(all.invalid).toEqual([]);
  });

  it('Myles Hoppe: demographics, geography, contact, PCP by encounter count (tie to the most recent), last visit', () => {
    const f = factsOf('3cbdd43e-7cb5-48b0-a097-47fecc7b4098');
    expect(f).toMatchObject({
      given: 'Myles',
      family: 'Hoppe',
      gender: 'male',
      birthDate: '1991-04-23',
      deceased: false,
      city: 'Swansea',
      state: 'MA',
      country: 'US',
      phone: '555-585-7546',
      language: 'en-US',
      mrn: '3cbdd43e-7cb5-48b0-a097-47fecc7b4098',
    });
    expect(f.postalCode).toBeUndefined();
    expect(f.email).toBeUndefined();
    expect(ageOn(f.birthDate!, now)).toBe(28);
    // Dr. Horacio Páez and Dr. Alexandra Mayert saw him 4 times each; Mayert saw him last (2019-07-02).
    expect(f.pcp).toEqual({ reference: 'Practitioner/33637fa7-eec5-35e0-af17-eaf20c81e099', source: 'encounters', name: 'Dr. Alexandra Mayert', npi: '9999912499' });
    expect(f.lastVisit).toMatchObject({ date: '2019-07-02T11:27:52-04:00', status: 'finished', class: 'AMB', types: [sct('162673000', 'General examination of patient (procedure)')], reasons: [], practitioner: 'Dr. Alexandra Mayert' });
    expect(f.encounters).toHaveLength(8);
    expect(f.encounters.at(-1)).toMatchObject({ date: '2000-02-02T10:27:52-05:00', reasons: [sct('75498004', 'Acute bacterial sinusitis (disorder)')], practitioner: 'Dr. Horacio Páez' });
  });

  it('Myles Hoppe: conditions with status and onset, medications, procedures, coverage from claims', () => {
    const f = factsOf('3cbdd43e-7cb5-48b0-a097-47fecc7b4098');
    expect(f.conditions.map((c) => [c.codes[0]!.code, c.clinicalStatus, c.onset, c.abatement])).toEqual([
      ['40055000', 'active', '2000-02-02T10:27:52-05:00', undefined],
      ['195662009', 'resolved', '2015-02-02T10:27:52-05:00', '2015-02-10T10:27:52-05:00'],
      ['10509002', 'resolved', '2017-07-06T11:27:52-04:00', '2017-07-13T11:27:52-04:00'],
    ]);
    expect(f.medications).toEqual([
      { id: expect.stringMatching(/^92752b49/), codes: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '313782', display: 'Acetaminophen 325 MG Oral Tablet' }], status: 'stopped', authoredOn: '2017-07-06T11:27:52-04:00' },
    ]);
    expect(f.procedures).toHaveLength(3);
    expect(f.procedures.some((p) => p.date === '2019-07-02T11:27:52-04:00' && p.codes[0]!.code === '430193006')).toBe(true);
    // 14 Cigna Health claims and EOBs, 3 marked NO_INSURANCE (uninsured, not a payer); the newest EOB runs to 2020-07-02.
    expect(f.coverage).toEqual([{ id: 'payer:Cigna Health', payer: 'Cigna Health', active: true, source: 'Claim', start: expect.any(String), end: '2020-07-02T11:57:52-04:00' }]);
    expect(f.a1c).toBeUndefined();
    expect(f.observations.find((o) => o.loinc === '39156-5')).toMatchObject({ value: 23.41, unit: 'kg/m2', date: '2019-07-02T11:27:52-04:00' });
    expect(f.appointments).toEqual([]);
  });

  it('Troy Krajcik: latest HbA1c, a last visit chosen by end time among same-start visits, prediabetes and anemia', () => {
    const f = factsOf('7cacc2af-8f5b-4ed5-b5d9-8679dfecc4ca');
    expect(f).toMatchObject({ given: 'Troy', family: 'Krajcik', gender: 'male', birthDate: '1988-03-13', city: 'Chelsea', state: 'MA', postalCode: '02150', phone: '555-274-5673' });
    // HbA1c 6.11 (2016), 6.36 (2018-12), 6.31 (2019-05-26): the latest is 6.31 %.
    expect(f.a1c).toMatchObject({ loinc: '4548-4', value: 6.31, unit: '%', date: '2019-05-26T19:59:39-04:00' });
    expect(f.observations.find((o) => o.loinc === '4548-4')).toEqual(f.a1c);
    // Two visits started 2019-05-26 19:59; the anemia visit ended later (21:27).
    expect(f.lastVisit).toMatchObject({ id: '31ccff2a-eff7-4638-9f9b-52e5288163d9', types: [sct('185347001', 'Encounter for problem')], reasons: [sct('271737000', 'Anemia (disorder)')], practitioner: 'Dr. Lawerence Ratke' });
    // Dr. Alden Nader 4 visits, Dr. Lawerence Ratke 3, Dr. Roselyn Beier 2.
    expect(f.pcp).toMatchObject({ source: 'encounters', name: 'Dr. Alden Nader', npi: '9999953069' });
    expect(f.conditions.filter((c) => c.clinicalStatus === 'active').map((c) => c.codes[0]!.display)).toEqual(['Prediabetes', 'Anemia (disorder)']);
    expect(f.coverage).toEqual([expect.objectContaining({ payer: 'Aetna', active: true, start: '2010-05-16T19:59:39-04:00', end: '2020-05-26T21:27:39-04:00' })]);
    expect(f.procedures).toHaveLength(10);
  });

  it('Sherman Green: HbA1c history reduced to the latest, UnitedHealthcare throughout, Dr. Delicia Grant as PCP', () => {
    const f = factsOf('b1e834a6-e110-4402-ac76-f78433ed09fa');
    expect(f).toMatchObject({ given: 'Sherman', family: 'Green', birthDate: '1991-03-17', city: 'Newton', state: 'MA', postalCode: '02458' });
    expect(f.a1c).toMatchObject({ value: 6.14, date: '2019-05-26T13:44:40-04:00' });
    expect(f.pcp?.name).toBe('Dr. Delicia Grant');
    expect(f.lastVisit).toMatchObject({ id: '3e9d4a46-5a6b-4f8c-9ef1-148eb49dc6c6', practitioner: 'Dr. Delicia Grant' });
    expect(f.coverage).toEqual([{ id: 'payer:UnitedHealthcare', payer: 'UnitedHealthcare', active: true, source: 'Claim', start: '2009-05-10T13:44:40-04:00', end: '2020-05-26T14:14:40-04:00' }]);
    expect(f.conditions.map((c) => `${c.codes[0]!.code}:${c.clinicalStatus}`)).toEqual(['15777000:active', '271737000:active', '444814009:resolved', '195662009:resolved']);
  });

  it('Wm Bergstrom: Anthem as the only payer (NO_INSURANCE ignored), five past prescriptions, postal code', () => {
    const f = factsOf('c536dee9-9ef6-4807-ae20-9f1045c9c7d6');
    expect(f).toMatchObject({ given: 'Wm', family: 'Bergstrom', birthDate: '1990-11-18', city: 'North Adams', state: 'MA', postalCode: '01247' });
    expect(f.coverage.map((c) => [c.payer, c.active, c.end])).toEqual([['Anthem', true, '2020-01-27T02:31:46-05:00']]);
    expect(f.medications.map((m) => m.codes[0]!.code).sort()).toEqual(['1049221', '308192', '313782', '849574', '856987']);
    expect(f.medications.every((m) => m.status === 'stopped')).toBe(true);
    expect(f.pcp?.name).toBe('Dr. Barney Jast');
    expect(f.lastVisit?.date).toBe('2019-01-27T02:01:46-05:00');
  });

  it('Fannie Waelchi: a newborn with one well-child visit', () => {
    const f = factsOf('8666cd40-7af9-48c6-a1a6-86a161195542');
    expect(f).toMatchObject({ given: 'Fannie', family: 'Waelchi', gender: 'female', birthDate: '2020-04-28', city: 'Brockton', state: 'MA', phone: '555-948-7585' });
    expect(f.pcp).toMatchObject({ name: 'Dr. Jimmy Schumm', npi: '9999922669' });
    expect(f.lastVisit?.types).toEqual([sct('410620009', 'Well child visit (procedure)')]);
    expect(f.conditions).toEqual([]);
  });

  it('derives the same facts from server-style Type/id references as from urn:uuid bundles', () => {
    const fromServer = factsFromBundles([{ resourceType: 'Bundle', type: 'collection', entry: flattenForServer(syntheaBundles(), undefined).map((r) => ({ resource: r as never })) }], { source: 'demo', now });
    const strip = (f: ReturnType<typeof factsOf>) => ({ ...f, updatedAt: undefined });
    for (const [id, f] of all.facts) expect(strip(fromServer.facts.get(id)!)).toEqual(strip(f));
  });

  it('resolves practitioners referenced by identifier to their names', () => {
    const bundle = syntheaPatientBundle('Myles_Hoppe');
    const npiOf = new Map(bundle.entry!.filter((e) => e.resource!.resourceType === 'Practitioner').map((e) => [e.fullUrl!, (e.resource as unknown as { identifier: Array<{ value: string }> }).identifier[0]!.value]));
    const text = JSON.stringify({ ...bundle, entry: bundle.entry!.filter((e) => e.resource!.resourceType !== 'Practitioner') }).replace(
      /"reference":"(urn:uuid:[^"]+)"/g,
      (m, ref: string) => (npiOf.has(ref) ? `"reference":"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|${npiOf.get(ref)}"` : m),
    );
    const practitioners = syntheaBundles().find((b) => b.entry?.[0]?.resource?.resourceType === 'Practitioner')!;
    const { facts } = factsFromBundles([JSON.parse(text) as Bundle, practitioners], { source: 'demo', now });
    const f = facts.get('3cbdd43e-7cb5-48b0-a097-47fecc7b4098')!;
    expect(f.pcp).toEqual({ reference: 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999912499', source: 'encounters', name: 'Dr. Alexandra Mayert', npi: '9999912499' });
    expect(f.lastVisit?.practitioner).toBe('Dr. Alexandra Mayert');
  });
});

describe('the facts fold', () => {
  const folder = () => {
    const f = new FactsFolder({ source: 'ehr', now });
    f.fold(emptyFacts('ehr', '-'), valid({ resourceType: 'Practitioner', id: 'dr1', name: [{ given: ['Ada'], family: 'Lovelace', prefix: ['Dr.'] }], identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }] }));
    f.fold(emptyFacts('ehr', '-'), valid({ resourceType: 'Organization', id: 'payer1', name: 'Acme Health Plan' }));
    return f;
  };

  it('prefers Patient.generalPractitioner over encounter counts', () => {
    const fold = folder();
    const facts = emptyFacts('ehr', 'p1');
    fold.fold(facts, valid({ resourceType: 'Patient', id: 'p1', generalPractitioner: [{ reference: 'Practitioner/dr1' }] }));
    fold.fold(facts, valid({ resourceType: 'Encounter', id: 'e1', status: 'finished', subject: { reference: 'Patient/p1' }, period: { start: '2019-01-01' }, participant: [{ individual: { reference: 'Practitioner/other', display: 'Dr. Other' } }] }));
    expect(fold.finish(facts).pcp).toEqual({ reference: 'Practitioner/dr1', source: 'generalPractitioner', name: 'Dr. Ada Lovelace', npi: '1234567893' });
  });

  it('reads contact points by rank and use, the preferred language and deceased', () => {
    const fold = folder();
    const facts = emptyFacts('ehr', 'p1');
    fold.fold(facts, valid({
      resourceType: 'Patient', id: 'p1', deceasedDateTime: '2019-12-01T00:00:00Z',
      telecom: [
        { system: 'email', value: 'old@example.test', period: { end: '2010-01-01' } },
        { system: 'phone', value: '555-0001', use: 'work' },
        { system: 'phone', value: '555-0002', use: 'mobile' },
        { system: 'email', value: 'now@example.test' },
      ],
      communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } }, { language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'es' }] }, preferred: true }],
      address: [{ use: 'work', city: 'Work City', state: 'NY' }, { use: 'home', city: 'Home City', state: 'Texas', postalCode: '73301' }],
    }));
    expect(facts).toMatchObject({ email: 'now@example.test', phone: '555-0002', language: 'es', deceased: true, deceasedDate: '2019-12-01T00:00:00Z', city: 'Home City', state: 'TX', postalCode: '73301' });
  });

  it('generates a marked synthetic email for demo patients without one', () => {
    const fold = new FactsFolder({ source: 'demo', now, syntheticEmailDomain: 'example.test' });
    const facts = fold.fold(emptyFacts('demo', '3cbdd43e'), valid({ resourceType: 'Patient', id: '3cbdd43e-7cb5', name: [{ given: ['Myles'], family: 'Hoppe' }] }));
    expect(facts).toMatchObject({ email: 'myles.hoppe.3cbdd43e@example.test', emailSynthetic: true });
  });

  it('takes coverage from Coverage resources, with the payer name, over claims', () => {
    const fold = folder();
    const facts = emptyFacts('ehr', 'p1');
    fold.fold(facts, valid({ resourceType: 'Claim', id: 'cl1', status: 'active', patient: { reference: 'Patient/p1' }, insurance: [{ focal: true, coverage: { display: 'Old Payer' } }], billablePeriod: { start: '2019-01-01', end: '2019-01-02' } }));
    expect(facts.coverage.map((c) => c.payer)).toEqual(['Old Payer']);
    fold.fold(facts, valid({ resourceType: 'Coverage', id: 'cov1', status: 'active', beneficiary: { reference: 'Patient/p1' }, payor: [{ reference: 'Organization/payer1' }], type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIP', display: 'health insurance plan policy' }] }, period: { start: '2019-01-01', end: '2020-12-31' } }));
    fold.fold(facts, valid({ resourceType: 'Coverage', id: 'cov0', status: 'active', beneficiary: { reference: 'Patient/p1' }, payor: [{ display: 'Lapsed Plan' }], period: { start: '2015-01-01', end: '2016-12-31' } }));
    fold.fold(facts, valid({ resourceType: 'ExplanationOfBenefit', id: 'eob1', status: 'active', patient: { reference: 'Patient/p1' }, insurance: [{ focal: true, coverage: { display: 'Other Payer' } }] }));
    expect(facts.coverage).toEqual([
      { id: 'cov1', payer: 'Acme Health Plan', type: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIP', display: 'health insurance plan policy' }, active: true, start: '2019-01-01', end: '2020-12-31', source: 'Coverage' },
      { id: 'cov0', payer: 'Lapsed Plan', active: false, start: '2015-01-01', end: '2016-12-31', source: 'Coverage' },
    ]);
  });

  it('reads the dispense request of a prescription: quantity, days of supply, refills', () => {
    const fold = folder();
    const facts = fold.fold(emptyFacts('ehr', 'p1'), valid({
      resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' }, authoredOn: '2019-11-01',
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin' }] },
      dispenseRequest: { numberOfRepeatsAllowed: 3, quantity: { value: 60, unit: 'TAB' }, expectedSupplyDuration: { value: 4, unit: 'weeks', system: 'http://unitsofmeasure.org', code: 'wk' } },
    }));
    expect(facts.medications).toEqual([{ id: 'm1', codes: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin' }], status: 'active', authoredOn: '2019-11-01', quantity: 60, supplyDays: 28, refills: 3 }]);
  });

  it('keeps upcoming appointments only, with the practitioner, and drops one cancelled later', () => {
    const fold = folder();
    const facts = emptyFacts('ehr', 'p1');
    const appt = (id: string, status: string, start: string) =>
      valid({ resourceType: 'Appointment', id, status, start, serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '185349003', display: 'check up' }] }], participant: [{ actor: { reference: 'Patient/p1' }, status: 'accepted' }, { actor: { reference: 'Practitioner/dr1' }, status: 'accepted' }] });
    for (const a of [appt('a1', 'booked', '2020-02-01T09:00:00Z'), appt('a0', 'fulfilled', '2019-06-01T09:00:00Z'), appt('a2', 'booked', '2019-12-01T09:00:00Z'), appt('a3', 'pending', '2020-01-15T09:00:00Z')]) {
      expect(fold.patientOf(a)).toBe('p1');
      fold.fold(facts, a);
    }
    fold.finish(facts);
    expect(facts.appointments.map((a) => [a.id, a.practitioner])).toEqual([['a3', 'Dr. Ada Lovelace'], ['a1', 'Dr. Ada Lovelace']]);
    fold.fold(facts, appt('a1', 'cancelled', '2020-02-01T09:00:00Z'));
    expect(fold.finish(facts).appointments.map((a) => a.id)).toEqual(['a3']);
  });

  it('replaces entries by resource id on an incremental fold and keeps the latest value per LOINC', () => {
    const fold = folder();
    const facts = emptyFacts('ehr', 'p1');
    const a1c = (id: string, value: number, date: string) => valid({ resourceType: 'Observation', id, status: 'final', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] }, effectiveDateTime: date, valueQuantity: { value, unit: '%' } });
    fold.fold(facts, a1c('o1', 7.1, '2019-01-01'));
    fold.fold(facts, a1c('o2', 6.5, '2019-06-01'));
    fold.fold(facts, a1c('o0', 9.9, '2018-01-01'));
    expect(facts.a1c).toEqual({ id: 'o2', loinc: '4548-4', value: 6.5, unit: '%', date: '2019-06-01' });
    fold.fold(facts, a1c('o2', 6.6, '2019-06-01'));
    expect(facts.a1c?.value).toBe(6.6);
    const cond = (status: string) => valid({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] }, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: status }] } });
    fold.fold(facts, cond('active'));
    fold.fold(facts, cond('remission'));
    expect(facts.conditions.map((c) => c.clinicalStatus)).toEqual(['remission']);
  });

  it('recounts the PCP across incremental folds from the stored encounter practitioners', () => {
    const fold = folder();
    const enc = (id: string, dr: string, start: string) => valid({ resourceType: 'Encounter', id, status: 'finished', subject: { reference: 'Patient/p1' }, period: { start }, participant: [{ individual: { reference: `Practitioner/${dr}` } }] });
    const first = fold.finish(fold.fold(fold.fold(emptyFacts('ehr', 'p1'), enc('e1', 'drX', '2019-01-01')), enc('e2', 'drX', '2019-02-01')));
    expect(first.pcp?.reference).toBe('Practitioner/drX');
    const stored = JSON.parse(JSON.stringify(first));
    for (const [id, d] of [['e3', '2019-03-01'], ['e4', '2019-04-01'], ['e5', '2019-05-01']]) fold.fold(stored, enc(id!, 'dr1', d!));
    expect(fold.finish(stored).pcp).toEqual({ reference: 'Practitioner/dr1', source: 'encounters', name: 'Dr. Ada Lovelace', npi: '1234567893' });
  });

  it('computes ages in whole years', () => {
    expect(ageOn('1991-04-23', new Date('2020-04-22T00:00:00Z'))).toBe(28);
    expect(ageOn('1991-04-23', new Date('2020-04-23T00:00:00Z'))).toBe(29);
    expect(ageOn('1991', new Date('2020-04-23T00:00:00Z'))).toBe(29);
  });
});

describe('a newer Patient version', () => {
  it('replaces the demographics it carries and clears what it no longer has', () => {
    const fold = new FactsFolder({ source: 'ehr', now });
    const facts = emptyFacts('ehr', 'p1');
    fold.fold(facts, validateOk({ resourceType: 'Patient', id: 'p1', gender: 'female', address: [{ city: 'Old Town', state: 'MA', postalCode: '01000' }], telecom: [{ system: 'email', value: 'a@example.test' }] }));
    fold.fold(facts, validateOk({ resourceType: 'Patient', id: 'p1', gender: 'female', address: [{ city: 'New Town', state: 'NH' }] }));
    expect(facts).toMatchObject({ city: 'New Town', state: 'NH', gender: 'female' });
    expect(facts.postalCode).toBeUndefined();
    expect(facts.email).toBeUndefined();
  });
});

function validateOk(r: unknown): ReadResource {
  const v = validateResource(r);
  if (v.ok !== true) throw new Error('invalid fixture');
  return v.resource;
}
