// A synthetic patient for compose tests: every name, date and value is invented.
import { phi } from '../../../fhir/phi.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import type { MergeContext } from '../../../connector/compose/merge-tags.js';

export function syntheticFacts(overrides: Partial<PatientFacts> = {}): PatientFacts {
  return {
    patientId: 'pat-1',
    source: 'demo',
    given: phi('Maria Elena'),
    family: phi('Gonzalez'),
    birthDate: phi('1971-06-22'),
    deceased: false,
    email: phi('maria.gonzalez@example.net'),
    language: 'en-US',
    pcp: { reference: 'Practitioner/7', name: 'Dr. Amara Osei', source: 'generalPractitioner' },
    lastVisit: { date: '2026-03-04', types: [], reasons: [] },
    encounters: [],
    conditions: [],
    observations: [],
    a1c: { loinc: '4548-4', value: 7.4, unit: '%', date: '2026-02-02' },
    coverage: [],
    procedures: [],
    medications: [],
    appointments: [
      { id: 'a1', status: 'fulfilled', start: '2026-09-15T14:00:00Z', types: [] },
      { id: 'a2', status: 'booked', start: '2026-12-01T14:30:00Z', types: [{ system: 'urn:x', code: 'fu', display: 'Diabetes follow-up' }] },
      { id: 'a3', status: 'cancelled', start: '2026-11-30T14:30:00Z', types: [] },
    ],
    ...overrides,
  };
}

export const practiceContext: MergeContext = {
  practice: {
    name: 'Riverside Family Medicine',
    phone: '(555) 010-2000',
    address: '100 Main Street, Springfield, IL 62701',
    website: 'https://riverside.example.org',
    timeZone: 'America/Chicago',
  },
  sender: { address: 'outreach@mail.riverside.example.org', verifiedDomain: 'riverside.example.org', displayName: 'Riverside Outreach' },
  links: { unsubscribe: 'https://outreach.riverside.example.org/u/tok_123?x=1&y=2' },
  now: new Date('2026-11-23T12:00:00Z'),
};
