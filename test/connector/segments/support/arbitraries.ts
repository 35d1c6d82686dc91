// fast-check generators of patient facts and segment definitions over small domains, so predicates hit often.
import fc from 'fast-check';
import type { CodeRef, PatientFacts } from '../../../../fhir/patient-facts.js';
import { phi } from '../../../../fhir/phi.js';
import type { SegmentNode, SegmentPredicate } from '../../../../connector/segments/definition.js';
import { icd10cm, snomed } from '../../../../connector/segments/value-sets.js';
import type { PatientState } from './brute-force.js';

export const asOfDates = ['2024-02-29', '2025-03-01', '2026-06-30', '2023-12-31'];

const rxnorm = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const codePool: CodeRef[] = [
  { system: snomed, code: '44054006' },
  { system: snomed, code: '15777000' },
  { system: snomed, code: '59621000' },
  { system: snomed, code: '195967001' },
  { system: snomed, code: '40055000' },
  { system: icd10cm, code: 'E11.9' },
  { system: icd10cm, code: 'E119' },
  { system: icd10cm, code: 'I10' },
  { system: icd10cm, code: 'N18.3' },
  { system: icd10cm, code: 'J45.909' },
  { system: rxnorm, code: '849574' },
  { system: 'urn:local', code: '44054006' },
];
const loincPool = ['4548-4', '2339-0', '8480-6'];
const statePool = ['MA', 'ma', ' NY', 'CA'];
const cityPool = ['Boston', 'boston ', 'Brockton', 'New York'];
const postalPool = ['02144', '02180', '01022', 'K1A 0B1', '021'];
const payerPool = ['Medicare', 'medicare', 'Humana', 'Aetna'];
const typePool: CodeRef[] = [{ system: 'urn:t', code: 'HMO' }, { system: 'urn:t', code: 'PPO', display: 'Preferred' }, { system: 'urn:t', code: 'MCARE', display: 'Medicare' }];
const pcpPool = ['Practitioner/1', 'Practitioner/2', 'Practitioner/3'];
const npiPool = ['9999999001', '9999999002'];
const valuePool = [5.5, 6.14, 6.5, 8.99, 9, 9.0000001, 9.1, 12, Number.NaN];
const purposePool = ['marketing', 'appointment-reminder', 'treatment-reminder'];
const statusPool = ['active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved'];
const apptStatusPool = ['booked', 'pending', 'cancelled', 'fulfilled', 'noshow', 'proposed'];

/** Days from 2019-01-01 to 2027-12-31, as ISO dates, sometimes as date-times with an offset. */
const dateArb = fc
  .tuple(fc.integer({ min: 0, max: 3285 }), fc.constantFrom('', 'T10:15:00-05:00', 'T23:59:59Z'))
  .map(([n, suffix]) => new Date(Date.UTC(2019, 0, 1 + n)).toISOString().slice(0, 10) + suffix);
/** Near an evaluation day, often exactly on a "within N days" edge (N in the predicate generators below). */
const edgeOffsets = [0, 0, 0, 0, 1, -1, -29, -30, -31, -89, -90, -91, -364, -365, -366, -399, -400, -401, 29, 30, 31, 89, 90, 91, 365, 366];
const nearDateArb = (asOf: string) => fc
  .tuple(fc.constant(asOf), fc.oneof(fc.integer({ min: -400, max: 120 }), fc.constantFrom(...edgeOffsets), fc.constantFrom(...edgeOffsets)))
  .map(([d, n]) => {
    const x = new Date(`${d}T00:00:00Z`);
    x.setUTCDate(x.getUTCDate() + n);
    return x.toISOString().slice(0, 10);
  });
const anyDateArb = (asOf: string) => fc.oneof(dateArb, nearDateArb(asOf), nearDateArb(asOf));
/** Exactly N years before an evaluation day, give or take a day: the edges of every age range. */
const ageEdges = [0, 1, 17, 18, 19, 39, 40, 41, 64, 65, 66, 75, 76, 100, 101];
const birthdayEdgeArb = (asOf: string) => fc
  .tuple(fc.constant(asOf), fc.oneof(fc.integer({ min: 0, max: 101 }), fc.constantFrom(...ageEdges)), fc.constantFrom(-1, 0, 1))
  .map(([d, years, shift]) => {
    const [y, m, day] = d.split('-').map(Number) as [number, number, number];
    const x = new Date(Date.UTC(y - years, m - 1, day + shift));
    return x.toISOString().slice(0, 10);
  });
const birthArb = (asOf: string) => fc.oneof(
  birthdayEdgeArb(asOf),
  birthdayEdgeArb(asOf),
  fc.integer({ min: 0, max: 36500 }).map((n) => new Date(Date.UTC(1930, 0, 1 + n)).toISOString().slice(0, 10)),
  fc.constantFrom('1984-02-29', '1983-02-28', '1983-03-01', '1944-02-29', '1998-02-28', '1986-03-01', '1986-02-28', '1976-06-30', '1985-06-30', '1980', '1980-05', '1990-02-30'),
);
const codesArb = fc.array(fc.constantFrom(...codePool), { minLength: 1, maxLength: 2 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

export const factsArb = (asOf: string): fc.Arbitrary<PatientFacts> => fc
  .record({
    gender: opt(fc.constantFrom('male', 'female', 'other', 'unknown') as fc.Arbitrary<PatientFacts['gender'] & string>),
    birthDate: opt(birthArb(asOf)),
    state: opt(fc.constantFrom(...statePool)),
    city: opt(fc.constantFrom(...cityPool)),
    postalCode: opt(fc.constantFrom(...postalPool)),
    given: opt(fc.constantFrom('ann', 'Bob', ' émile')),
    family: opt(fc.constantFrom('Smith', 'lee')),
    pcp: opt(fc.record({ reference: fc.constantFrom(...pcpPool), npi: opt(fc.constantFrom(...npiPool)) })),
    lastVisit: opt(fc.record({ date: anyDateArb(asOf), reasons: fc.array(fc.constantFrom(...codePool), { maxLength: 2 }) })),
    conditions: fc.array(fc.record({ codes: codesArb, clinicalStatus: opt(fc.constantFrom(...statusPool)), abatement: opt(dateArb) }), { maxLength: 3 }),
    observations: fc.array(fc.record({ loinc: fc.constantFrom(...loincPool), value: fc.constantFrom(...valuePool), date: anyDateArb(asOf) }), { maxLength: 3 }),
    a1cFromObservations: fc.boolean(),
    coverage: fc.array(
      fc.record({ payer: opt(fc.constantFrom(...payerPool)), type: opt(fc.constantFrom(...typePool)), active: fc.boolean(), start: opt(anyDateArb(asOf)), end: opt(anyDateArb(asOf)) }),
      { maxLength: 2 },
    ),
    procedures: fc.array(fc.record({ codes: codesArb, date: opt(anyDateArb(asOf)) }), { maxLength: 2 }),
    medications: fc.array(fc.record({ codes: codesArb, authoredOn: opt(anyDateArb(asOf)) }), { maxLength: 2 }),
    appointments: fc.array(fc.record({ status: fc.constantFrom(...apptStatusPool), start: opt(nearDateArb(asOf)) }), { maxLength: 2 }),
  })
  .map((r, ) => {
    const observations = r.observations.map((o) => ({ ...o }));
    const a1c = r.a1cFromObservations ? undefined : observations.find((o) => o.loinc === '4548-4');
    const facts: PatientFacts = {
      patientId: 'p',
      source: 'gen',
      deceased: false,
      ...(r.gender ? { gender: r.gender } : {}),
      ...(r.birthDate ? { birthDate: phi(r.birthDate) } : {}),
      ...(r.state ? { state: r.state } : {}),
      ...(r.city ? { city: phi(r.city) } : {}),
      ...(r.postalCode ? { postalCode: phi(r.postalCode) } : {}),
      ...(r.given ? { given: phi(r.given) } : {}),
      ...(r.family ? { family: phi(r.family) } : {}),
      ...(r.pcp ? { pcp: { reference: r.pcp.reference, ...(r.pcp.npi ? { npi: r.pcp.npi } : {}), source: 'encounters' as const } } : {}),
      ...(r.lastVisit ? { lastVisit: { date: r.lastVisit.date, types: [], reasons: r.lastVisit.reasons } } : {}),
      encounters: [],
      conditions: r.conditions.map((c) => ({ codes: c.codes, ...(c.clinicalStatus ? { clinicalStatus: c.clinicalStatus } : {}), ...(c.abatement ? { abatement: c.abatement } : {}) })),
      observations,
      ...(a1c ? { a1c } : {}),
      coverage: r.coverage.map((c) => ({
        ...(c.payer ? { payer: c.payer } : {}),
        ...(c.type ? { type: c.type } : {}),
        active: c.active,
        ...(c.start ? { start: c.start } : {}),
        ...(c.end ? { end: c.end } : {}),
        source: 'Coverage' as const,
      })),
      procedures: r.procedures.map((p) => ({ codes: p.codes, ...(p.date ? { date: p.date } : {}) })),
      medications: r.medications.map((m) => ({ codes: m.codes, ...(m.authoredOn ? { authoredOn: m.authoredOn } : {}) })),
      appointments: r.appointments.map((a, i) => ({ id: `a${i}`, status: a.status, ...(a.start ? { start: a.start } : {}), types: [] })),
    };
    return facts;
  });

export const patientArb = (asOf: string): fc.Arbitrary<PatientState> => fc.record({
  facts: factsArb(asOf),
  authorized: fc.subarray(purposePool).map((xs) => new Set(xs)),
  suppressed: fc.boolean(),
});

/** Patients under distinct internal ids, some far apart (the index grows by doubling). */
export const populationArb = (asOf: string) => fc
  .uniqueArray(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 5000 })), { minLength: 10, maxLength: 60, size: 'max' })
  .chain((ids) => fc.tuple(fc.constant(ids), fc.array(patientArb(asOf), { minLength: ids.length, maxLength: ids.length })))
  .map(([ids, states]) => ids.map((id, i) => ({ id, ...states[i]! })));

const list = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: 1, maxLength: 2 });
const days = fc.constantFrom(0, 1, 30, 90, 365, 400);
const comparator = fc.constantFrom('>', '>=', '<', '<=') as fc.Arbitrary<'>' | '>=' | '<' | '<='>;
const selector = fc.oneof(
  fc.record({ code: list(fc.constantFrom(...codePool.map((c) => c.code))), system: opt(fc.constantFrom(snomed, icd10cm, 'urn:local')) }),
  fc.record({ valueSet: fc.constantFrom('diabetes', 'hypertension', 'asthma', 'ckd', 'prediabetes') as fc.Arbitrary<'diabetes'> }),
  fc.record({ code: list(fc.constantFrom(...codePool.map((c) => c.code))), valueSet: fc.constantFrom('diabetes', 'ckd') as fc.Arbitrary<'diabetes'> }),
);
const strip = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** One generator per predicate type (definitions in their parsed form). */
export const predicateArbs = (asOf: string): Record<SegmentPredicate['type'], fc.Arbitrary<SegmentPredicate>> => ({
  gender: fc.record({ type: fc.constant('gender' as const), value: list(fc.constantFrom('male', 'female', 'other', 'unknown') as fc.Arbitrary<'male'>) }),
  age: fc
    .tuple(opt(fc.constantFrom(0, 18, 40, 65, 75, 100)), opt(fc.constantFrom(0, 17, 18, 40, 64, 75, 100)))
    .filter(([a, b]) => a !== undefined || b !== undefined)
    .map(([a, b]) => (a !== undefined && b !== undefined && a > b ? [b, a] : [a, b]))
    .map(([min, max]) => strip({ type: 'age' as const, min, max })),
  state: fc.record({ type: fc.constant('state' as const), value: list(fc.constantFrom('MA', 'ny', 'TX')) }),
  city: fc.record({ type: fc.constant('city' as const), value: list(fc.constantFrom('BOSTON', 'brockton', 'Chicago')) }),
  postalCode: fc.record({ type: fc.constant('postalCode' as const), prefix: list(fc.constantFrom('021', '0', 'k1a', '02144', '9')) }),
  pcp: fc.record({ type: fc.constant('pcp' as const), value: list(fc.constantFrom(...pcpPool, ...npiPool, 'Practitioner/9')) }),
  lastVisit: fc
    .record({ before: opt(nearDateArb(asOf)), after: opt(nearDateArb(asOf)), withinDays: opt(days) })
    .filter((r) => r.before !== undefined || r.after !== undefined || r.withinDays !== undefined)
    .map((r) => strip({ type: 'lastVisit' as const, ...r })),
  lastVisitReason: selector.map((s) => strip({ type: 'lastVisitReason' as const, ...s })),
  condition: fc.tuple(selector, fc.constantFrom('active', 'ever') as fc.Arbitrary<'active'>).map(([s, status]) => strip({ type: 'condition' as const, ...s, status })),
  hba1c: fc.record({ op: comparator, value: fc.constantFrom(6.14, 6.5, 9, 9.1) }).chain((r) => opt(days).map((withinDays) => strip({ type: 'hba1c' as const, ...r, withinDays }))),
  observation: fc
    .record({ loinc: fc.constantFrom(...loincPool, '1234-5'), op: comparator, value: fc.constantFrom(6.14, 9, 12) })
    .chain((r) => opt(days).map((withinDays) => strip({ type: 'observation' as const, ...r, withinDays }))),
  coverage: fc
    .oneof(
      fc.record({ active: fc.boolean() }),
      fc.record({ active: fc.boolean() }),
      fc.record({ payer: opt(list(fc.constantFrom('MEDICARE', 'humana', 'Cigna'))), coverageType: opt(list(fc.constantFrom('hmo', 'Preferred', 'medicare'))), active: opt(fc.boolean()) }),
    )
    .map((r) => strip({ type: 'coverage' as const, ...r })),
  procedure: fc.tuple(selector, opt(days)).map(([s, withinDays]) => strip({ type: 'procedure' as const, ...s, withinDays })),
  medication: fc.tuple(selector, opt(days)).map(([s, withinDays]) => strip({ type: 'medication' as const, ...s, withinDays })),
  appointment: days.map((withinDays) => ({ type: 'appointment' as const, withinDays })),
  authorized: fc.constantFrom(...purposePool, 'care-gap-reminder').map((purpose) => ({ type: 'authorized' as const, purpose })),
  notSuppressed: fc.constant({ type: 'notSuppressed' as const }),
});

export const predicateTypes = Object.keys(predicateArbs(asOfDates[0]!)) as Array<SegmentPredicate['type']>;

/** Trees of all / any / not, kept small. */
export const nodeArb = (asOf: string): fc.Arbitrary<SegmentNode> => fc.letrec<{ node: SegmentNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(...Object.values(predicateArbs(asOf))),
    fc.array(tie('node'), { minLength: 1, maxLength: 4 }).map((all) => ({ all })),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((any) => ({ any })),
    tie('node').map((not) => ({ not })),
  ),
})).node;

/** An evaluation day with a population generated around it. */
export const scenarioArb = fc.constantFrom(...asOfDates).chain((asOf) => fc.record({ asOf: fc.constant(asOf), population: populationArb(asOf) }));
