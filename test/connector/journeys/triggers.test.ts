// Trigger evaluation without a store: appointment, refill (authoredOn + supply x fills), HbA1c, mammography by age and gender, encounter follow-up; and the definition checks that keep a journey finite.
import { describe, expect, it } from 'vitest';
import { JourneyTrigger, parseJourneyDefinition, type JourneyTriggerInput } from '../../../connector/journeys/journey-definition.js';
import { occurrencesOf } from '../../../connector/journeys/triggers.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { phi } from '../../../fhir/phi.js';

const now = new Date('2031-05-10T12:00:00.000Z');
const day = 86_400_000;
const blind = (v: string) => `b(${v})`;
const facts = (over: Partial<PatientFacts> = {}): PatientFacts => ({
  patientId: 'p1', source: 'ehr', deceased: false, gender: 'female', birthDate: phi('1975-08-20'),
  encounters: [], conditions: [], observations: [], coverage: [], procedures: [], medications: [], appointments: [], ...over,
});
const eval_ = (trigger: JourneyTriggerInput, f: PatientFacts) =>
  occurrencesOf(JourneyTrigger.parse(trigger), f, now, blind).map((o) => ({ key: o.key, due: o.dueAt.toISOString(), anchor: o.anchor.toISOString() }));

describe('journey triggers', () => {
  it('reminds of booked future appointments N hours before, at once when already inside the window', () => {
    const f = facts({
      appointments: [
        { id: 'a1', status: 'booked', start: '2031-05-12T09:00:00Z', types: [] },
        { id: 'a2', status: 'booked', start: '2031-05-10T20:00:00Z', types: [] },
        { id: 'a3', status: 'proposed', start: '2031-05-13T09:00:00Z', types: [] },
      ],
    });
    expect(eval_({ kind: 'appointment-booked', hoursBefore: 24 }, f)).toEqual([
      { key: 'appointment:a1:b(2031-05-12T09:00:00Z)', due: '2031-05-11T09:00:00.000Z', anchor: '2031-05-12T09:00:00.000Z' },
      { key: 'appointment:a2:b(2031-05-10T20:00:00Z)', due: now.toISOString(), anchor: '2031-05-10T20:00:00.000Z' },
    ]);
  });

  it('finds each refill from authoredOn, the expected supply and the refills allowed', () => {
    const f = facts({
      medications: [
        { id: 'm1', codes: [], status: 'active', authoredOn: '2031-04-20', supplyDays: 30, refills: 2, quantity: 60 },
        { id: 'm2', codes: [], status: 'stopped', authoredOn: '2031-05-01', supplyDays: 30, refills: 5 },
        { id: 'm3', codes: [], status: 'active', authoredOn: '2031-05-01', quantity: 30 },
      ],
    });
    const start = Date.parse('2031-04-20T00:00:00Z');
    expect(eval_({ kind: 'refill-due', daysBefore: 3 }, f)).toEqual([1, 2, 3].map((k) => ({
      key: `refill:m1:${k}:b(2031-04-20)`,
      due: new Date(start + (k * 30 - 3) * day).toISOString(),
      anchor: new Date(start + k * 30 * day).toISOString(),
    })));
  });

  it('is due for HbA1c six months after the last test, at once when never tested, only with diabetes', () => {
    const diabetic = { codes: [{ system: 'http://snomed.info/sct', code: '44054006' }], clinicalStatus: 'active' };
    expect(eval_({ kind: 'screening-hba1c' }, facts({ conditions: [diabetic], observations: [{ loinc: '4548-4', value: 7, date: '2031-02-01T00:00:00Z' }] }))).toEqual([
      { key: 'hba1c:b(2031-02-01T00:00:00.000Z)', due: '2031-08-01T00:00:00.000Z', anchor: '2031-08-01T00:00:00.000Z' },
    ]);
    expect(eval_({ kind: 'screening-hba1c' }, facts({ conditions: [diabetic] }))).toEqual([{ key: 'hba1c:b(never)', due: now.toISOString(), anchor: now.toISOString() }]);
    expect(eval_({ kind: 'screening-hba1c' }, facts({ conditions: [{ ...diabetic, clinicalStatus: 'resolved' }] }))).toEqual([]);
    expect(eval_({ kind: 'screening-hba1c' }, facts())).toEqual([]);
  });

  it('is due for mammography by the configured age band, gender and interval', () => {
    const rule = { kind: 'screening-mammography', minAge: 50, maxAge: 74, intervalMonths: 24 } as const;
    // Born 1975-08-20: 55, last mammogram 2030-01-15 -> due 2032-01-15.
    expect(eval_(rule, facts({ procedures: [{ codes: [{ system: 'http://snomed.info/sct', code: '71651007' }], date: '2030-01-15T00:00:00Z' }] }))).toEqual([
      { key: 'mammography:b(2030-01-15T00:00:00.000Z)', due: '2032-01-15T00:00:00.000Z', anchor: '2032-01-15T00:00:00.000Z' },
    ]);
    // 45 today: due on the 50th birthday.
    expect(eval_(rule, facts({ birthDate: phi('1986-03-01') }))[0]).toMatchObject({ due: '2036-03-01T00:00:00.000Z' });
    expect(eval_(rule, facts({ gender: 'male' }))).toEqual([]);
    expect(eval_(rule, facts({ birthDate: phi('1950-01-01') }))).toEqual([]);
    expect(eval_({ ...rule, minAge: 40 }, facts({ birthDate: phi('1986-03-01') }))[0]).toMatchObject({ due: now.toISOString() });
  });

  it('follows up a finished encounter of a given type, not old history', () => {
    const visit = (id: string, date: string, code = '390906007') => ({ id, date, end: date, status: 'finished', types: [{ system: 'http://snomed.info/sct', code }], reasons: [] });
    const f = facts({ encounters: [visit('e1', '2031-05-09T10:00:00Z'), visit('e2', '2031-01-09T10:00:00Z'), visit('e3', '2031-05-09T10:00:00Z', '185349003')] });
    expect(eval_({ kind: 'encounter-follow-up', encounterTypes: ['390906007'], daysAfter: 7 }, f)).toEqual([
      { key: 'encounter:e1', due: '2031-05-16T10:00:00.000Z', anchor: '2031-05-09T10:00:00.000Z' },
    ]);
  });

  it('finds nothing for a deceased patient', () => {
    expect(eval_({ kind: 'appointment-booked' }, facts({ deceased: true, appointments: [{ id: 'a1', status: 'booked', start: '2031-05-12T09:00:00Z', types: [] }] }))).toEqual([]);
  });

  it('refuses steps that loop, jump to unknown steps or send nothing', () => {
    const send = { kind: 'send', name: 'a', templateVersionId: 1 };
    expect(() => parseJourneyDefinition({ kind: 'appointment-booked' }, [send, { kind: 'branch', name: 'b', on: 'opened', then: 'a', else: 'exit' }])).toThrow(/forward/);
    expect(() => parseJourneyDefinition({ kind: 'appointment-booked' }, [send, { kind: 'branch', name: 'b', on: 'opened', then: 'zz', else: 'exit' }])).toThrow(/unknown step/);
    expect(() => parseJourneyDefinition({ kind: 'appointment-booked' }, [{ kind: 'wait', name: 'w', hours: 2 }])).toThrow(/at least one/);
    expect(() => parseJourneyDefinition({ kind: 'appointment-booked' }, [send, { ...send }])).toThrow(/two steps/);
    expect(() => parseJourneyDefinition({ kind: 'nightly-rebuild' }, [send])).toThrow(/trigger/);
    expect(parseJourneyDefinition({ kind: 'refill-due' }, [send]).trigger).toEqual({ kind: 'refill-due', daysBefore: 3 });
  });
});
