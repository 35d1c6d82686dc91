// Trigger evaluation: from one patient's facts and a trigger, the occurrences that should start the journey and when (pure; dates are blinded before they name an occurrence).
import type { PatientFacts } from '../../fhir/patient-facts.js';
import type { JourneyTrigger } from './journey-definition.js';

/** One reason to run a journey for a patient, e.g. one booked appointment or one refill of one prescription. */
export interface Occurrence {
  /** Stable name of the occurrence: resource ids (not PHI) and keyed hashes of dates. */
  key: string;
  /** The clinical time it hangs on (appointment start, supply runs out, screening due). PHI: sealed at rest. */
  anchor: Date;
  /** When the journey's first step runs. */
  dueAt: Date;
  /** True when the occurrence going away (cancelled, moved, stopped, measured) withdraws a journey that has not reached its anchor. */
  withdrawable: boolean;
}

/** A keyed hash of a date: an occurrence key never holds a date of care in the clear. */
export type Blind = (value: string) => string;

const hour = 3_600_000;
const day = 24 * hour;
/** Occurrences whose due time lies further back than this are history, not work (a first sync of old records sends nothing). */
export const staleAfterMs = day;
const activeConditions = new Set(['active', 'recurrence', 'relapse']);

const time = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NaN);
const later = (a: number, b: number) => new Date(Math.max(a, b));

function addMonths(at: number, months: number): number {
  const d = new Date(at);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.getTime();
}

function addYears(isoDate: string, years: number): number {
  const d = new Date(`${isoDate.slice(0, 10)}T00:00:00Z`);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.getTime();
}

const matches = (codes: ReadonlyArray<{ code: string }>, wanted: ReadonlySet<string>) => codes.some((c) => wanted.has(c.code));

/** The occurrences a trigger finds in one patient's facts at `now`. Segment entry is decided by the engine (it needs the index). */
export function occurrencesOf(trigger: JourneyTrigger, facts: PatientFacts, now: Date, blind: Blind): Occurrence[] {
  const t = now.getTime();
  if (facts.deceased) return [];
  switch (trigger.kind) {
    case 'appointment-booked': {
      const out: Occurrence[] = [];
      for (const a of facts.appointments) {
        const start = time(a.start);
        if (a.status !== 'booked' || !Number.isFinite(start) || start <= t) continue;
        out.push({ key: `appointment:${a.id}:${blind(a.start!)}`, anchor: new Date(start), dueAt: later(start - trigger.hoursBefore * hour, t), withdrawable: true });
      }
      return out;
    }
    case 'refill-due': {
      // Each fill lasts the expected supply; fill k (1 = the first dispense) runs out at authoredOn + k x supply, and the
      // last one (k = refills + 1) is when the prescription itself needs renewing.
      const out: Occurrence[] = [];
      for (const m of facts.medications) {
        const authored = time(m.authoredOn);
        if (m.status !== 'active' || !m.id || !Number.isFinite(authored) || !m.supplyDays || m.supplyDays <= 0) continue;
        const fills = Math.max(0, Math.trunc(m.refills ?? 0)) + 1;
        for (let k = 1; k <= fills; k++) {
          const runsOut = authored + k * m.supplyDays * day;
          if (runsOut <= t) continue;
          out.push({ key: `refill:${m.id}:${k}:${blind(m.authoredOn!)}`, anchor: new Date(runsOut), dueAt: later(runsOut - trigger.daysBefore * day, t), withdrawable: true });
        }
      }
      return out;
    }
    case 'screening-hba1c': {
      const wanted = new Set(trigger.conditionCodes);
      const diabetic = facts.conditions.some((c) => (!c.clinicalStatus || activeConditions.has(c.clinicalStatus)) && matches(c.codes, wanted));
      if (!diabetic) return [];
      const last = [facts.a1c, ...facts.observations.filter((o) => o.loinc === '4548-4')]
        .map((o) => time(o?.date))
        .filter(Number.isFinite)
        .reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
      const due = Number.isFinite(last) ? addMonths(last, trigger.months) : t;
      const label = Number.isFinite(last) ? new Date(last).toISOString() : 'never';
      return [{ key: `hba1c:${blind(label)}`, anchor: new Date(due), dueAt: later(due, t), withdrawable: true }];
    }
    case 'screening-mammography': {
      if (facts.gender !== trigger.gender || !facts.birthDate) return [];
      const birth = String(facts.birthDate);
      const from = addYears(birth, trigger.minAge);
      const until = addYears(birth, trigger.maxAge + 1);
      const wanted = new Set(trigger.codes);
      const dates = [
        ...facts.procedures.filter((p) => matches(p.codes, wanted)).map((p) => time(p.date)),
        ...facts.observations.filter((o) => wanted.has(o.loinc)).map((o) => time(o.date)),
      ].filter(Number.isFinite);
      const last = dates.length ? Math.max(...dates) : Number.NaN;
      const due = Math.max(Number.isFinite(last) ? addMonths(last, trigger.intervalMonths) : t, from, t);
      if (due >= until) return [];
      const label = Number.isFinite(last) ? new Date(last).toISOString() : 'never';
      return [{ key: `mammography:${blind(label)}`, anchor: new Date(due), dueAt: new Date(due), withdrawable: true }];
    }
    case 'encounter-follow-up': {
      const wanted = new Set(trigger.encounterTypes);
      const out: Occurrence[] = [];
      for (const e of facts.encounters) {
        if ((e.status && e.status !== 'finished') || !matches(e.types, wanted)) continue;
        const ended = time(e.end ?? e.date);
        if (!Number.isFinite(ended)) continue;
        const due = ended + trigger.daysAfter * day;
        if (due < t - staleAfterMs) continue;
        out.push({ key: `encounter:${e.id ?? blind(e.date)}`, anchor: new Date(ended), dueAt: later(due, t), withdrawable: false });
      }
      return out;
    }
    case 'segment-entry':
      return [];
  }
}
