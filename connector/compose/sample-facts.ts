// A made-up patient for sample previews: what a marketer sees instead of a real recipient (no PHI, nothing to audit).
import { phi } from '../../fhir/phi.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';

const day = 86_400_000;
const isoDay = (t: number) => new Date(t).toISOString().slice(0, 10);

/** Values relative to `now`, so "next" and "last" tags always have something to show. */
export function sampleFacts(now: Date = new Date(), language = 'en-US'): PatientFacts {
  const t = now.getTime();
  const nextAt = new Date(Math.floor((t + 7 * day) / day) * day + 15 * 3_600_000).toISOString();
  return {
    patientId: 'sample',
    source: 'sample',
    given: phi('Alex'),
    family: phi('Sample'),
    deceased: false,
    email: phi('alex.sample@example.org'),
    emailSynthetic: true,
    language,
    pcp: { reference: 'Practitioner/sample', name: 'Dr. Jordan Sample', source: 'generalPractitioner' },
    lastVisit: { date: isoDay(t - 60 * day), types: [], reasons: [] },
    encounters: [],
    conditions: [],
    observations: [],
    a1c: { loinc: '4548-4', value: 7.2, unit: '%', date: isoDay(t - 30 * day) },
    coverage: [],
    procedures: [],
    medications: [],
    appointments: [
      { id: 'sample-past', status: 'fulfilled', start: new Date(t - 60 * day).toISOString(), types: [] },
      { id: 'sample-next', status: 'booked', start: nextAt, types: [{ system: 'urn:sample', code: 'visit', display: 'Annual wellness visit' }] },
    ],
  };
}
