// Synthetic FHIR R4 resources for the journeys tests: invented patients, appointments, prescriptions, conditions, labs and visits.
import type { Resource } from './journey-world.js';

const subject = (patient: string) => ({ reference: `Patient/${patient}` });

export function patientResource(id: string, options: { gender?: 'female' | 'male'; birthDate?: string; deceasedDateTime?: string } = {}): Resource {
  return {
    resourceType: 'Patient',
    id,
    name: [{ given: [`Given${id.replace(/[^a-z0-9]/gi, '')}`], family: 'Testfamily' }],
    gender: options.gender ?? 'female',
    birthDate: options.birthDate ?? '1975-04-12',
    telecom: [{ system: 'email', value: `${id}@valid.test` }],
    ...(options.deceasedDateTime ? { deceasedDateTime: options.deceasedDateTime } : {}),
  };
}

export function appointmentResource(id: string, patient: string, start: string, status = 'booked'): Resource {
  return {
    resourceType: 'Appointment',
    id,
    status,
    start,
    end: new Date(Date.parse(start) + 30 * 60_000).toISOString(),
    serviceType: [{ coding: [{ system: 'http://snomed.info/sct', code: '185349003', display: 'check up' }] }],
    participant: [{ actor: subject(patient), status: 'accepted' }],
  };
}

export function prescriptionResource(id: string, patient: string, authoredOn: string, supplyDays: number, refills: number, status = 'active'): Resource {
  return {
    resourceType: 'MedicationRequest',
    id,
    status,
    intent: 'order',
    subject: subject(patient),
    authoredOn,
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin' }] },
    dispenseRequest: { numberOfRepeatsAllowed: refills, quantity: { value: supplyDays * 2, unit: 'TAB' }, expectedSupplyDuration: { value: supplyDays, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' } },
  };
}

export function conditionResource(id: string, patient: string, snomed: string): Resource {
  return {
    resourceType: 'Condition',
    id,
    subject: subject(patient),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code: snomed }] },
  };
}

export function hba1cResource(id: string, patient: string, effectiveDateTime: string, value = 7.2): Resource {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    subject: subject(patient),
    code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c' }] },
    effectiveDateTime,
    valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
  };
}

export function encounterResource(id: string, patient: string, typeCode: string, start: string, end: string): Resource {
  return {
    resourceType: 'Encounter',
    id,
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    type: [{ coding: [{ system: 'http://snomed.info/sct', code: typeCode }] }],
    subject: subject(patient),
    period: { start, end },
  };
}
