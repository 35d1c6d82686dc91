// Generated synthetic PatientFacts for the store tests and the store bench (no real person behind any of them).
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { phi } from '../../../fhir/phi.js';

const given = ['Ada', 'Bram', 'Cleo', 'Dov', 'Esme', 'Finn', 'Gus', 'Hana', 'Ines', 'Jude'];
const family = ['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Novak', 'Quispe', 'Haddad', 'Byrne'];

/** One patient's facts, varied by `i`, about the size of a Synthea patient's derived facts. */
export function syntheticFacts(i: number, source = 'test-ehr'): PatientFacts {
  const year = 1940 + (i % 60);
  return {
    patientId: `pat-${i}`,
    source,
    mrn: phi(`MRN${100000 + i}`),
    given: phi(given[i % given.length]!),
    family: phi(family[i % family.length]!),
    gender: i % 2 ? 'female' : 'male',
    birthDate: phi(`${year}-0${(i % 9) + 1}-1${i % 10}`),
    deceased: false,
    city: phi('Springfield'),
    state: 'MA',
    postalCode: phi(`0${1000 + (i % 900)}`),
    country: 'US',
    email: phi(`patient${i}@example.org`),
    emailSynthetic: true,
    language: 'en',
    encounters: Array.from({ length: 5 }, (_, k) => ({
      date: `2024-0${(k % 9) + 1}-15T10:00:00Z`,
      types: [{ system: 'http://snomed.info/sct', code: '185349003', display: 'Encounter for check up' }],
      reasons: [],
      class: 'AMB',
    })),
    conditions: [
      { codes: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }], clinicalStatus: 'active', onset: '2015-03-01' },
      { codes: [{ system: 'http://snomed.info/sct', code: '38341003', display: 'Hypertension' }], clinicalStatus: 'active', onset: '2012-06-01' },
    ],
    observations: [
      { loinc: '4548-4', value: 6 + (i % 40) / 10, unit: '%', date: '2024-05-01' },
      { loinc: '39156-5', value: 24 + (i % 10), unit: 'kg/m2', date: '2024-05-01' },
    ],
    a1c: { loinc: '4548-4', value: 6 + (i % 40) / 10, unit: '%', date: '2024-05-01' },
    coverage: [{ payer: 'Medicare', active: true, source: 'Coverage' }],
    procedures: [],
    medications: [{ codes: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG' }], status: 'active' }],
    appointments: [],
  };
}
