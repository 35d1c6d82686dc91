// R4 subset validation: fixtures pass, failures name type, id, path and reason, never the value found.
import { describe, expect, it } from 'vitest';
import { validateResource } from '../../fhir/resources.js';
import { syntheaBundles } from './support/synthea.js';

describe('validateResource', () => {
  it('accepts every Synthea resource of the subset and skips the other types', () => {
    const outcomes = syntheaBundles().flatMap((b) => (b.entry ?? []).map((e) => validateResource(e.resource)));
    expect(outcomes.filter((o) => o.ok === false)).toEqual([]);
    expect(outcomes.filter((o) => o.ok === 'skipped').map((o) => (o as { resourceType: string }).resourceType)).toContain('Immunization');
  });

  it.each([
    [{ resourceType: 'Patient', id: 'p1', birthDate: '23/04/1991' }, 'Patient.birthDate', 'not a valid FHIR date'],
    [{ resourceType: 'Patient', id: 'p1', gender: 'F' }, 'Patient.gender', 'not one of the allowed values'],
    [{ resourceType: 'Observation', id: 'o1', status: 'final', code: {}, valueQuantity: { value: '6.5' } }, 'Observation.valueQuantity.value', 'expected number'],
    [{ resourceType: 'Observation', id: 'o1', status: 'final' }, 'Observation.code', 'expected object'],
    [{ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, onsetDateTime: 'last spring' }, 'Condition.onsetDateTime', 'not a valid FHIR dateTime'],
    [{ resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: {}, dispenseRequest: { numberOfRepeatsAllowed: -1 } }, 'MedicationRequest.dispenseRequest.numberOfRepeatsAllowed', 'fewer than 0 items or characters'],
    [{ resourceType: 'Appointment', id: 'a1', status: 'booked', participant: [] }, 'Appointment.participant', 'fewer than 1 items or characters'],
  ])('quarantines %j at %s', (resource, path, reason) => {
    const v = validateResource(resource);
    expect(v).toEqual({ ok: false, issue: { resourceType: resource.resourceType, resourceId: resource.id, path, reason } });
    expect(JSON.stringify(v)).not.toMatch(/23\/04|"F"|6\.5|last spring/);
  });

  it('names input that is not a resource at all', () => {
    expect(validateResource([1])).toEqual({ ok: false, issue: { path: '(resource)', reason: 'not a JSON object' } });
    expect(validateResource({ id: 'x' })).toEqual({ ok: false, issue: { resourceId: 'x', path: 'resourceType', reason: 'missing or not a resource type' } });
  });

  it('passes unread fields through untouched', () => {
    const v = validateResource({ resourceType: 'Patient', id: 'p1', maritalStatus: { text: 'M' }, extension: [{ url: 'x' }] });
    expect(v.ok === true && v.resource).toMatchObject({ maritalStatus: { text: 'M' }, extension: [{ url: 'x' }] });
  });
});
