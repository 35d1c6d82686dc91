// The reference semantics of segment definitions: evaluates one patient's facts directly, with ISO date strings.
import type { PatientFacts } from '../../../../fhir/patient-facts.js';
import type { CodeSelector, Comparator, SegmentNode } from '../../../../connector/segments/definition.js';
import { inValueSet } from '../../../../connector/segments/value-sets.js';

export interface PatientState {
  facts: PatientFacts;
  authorized: ReadonlySet<string>;
  suppressed: boolean;
}

/** ISO day `n` days after `iso` (negative: before). */
export function addDays(iso: string, n: number): string {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The date part as written, padded for partial dates; undefined when unreadable. */
function day(iso: string | undefined): string | undefined {
  if (!iso) return undefined;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(iso);
  if (!m) return undefined;
  const out = `${m[1]}-${m[2] ?? '01'}-${m[3] ?? '01'}`;
  const d = new Date(`${out}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== out ? undefined : out;
}

function age(birth: string, on: string): number {
  const [by, bm, bd] = birth.split('-').map(Number) as [number, number, number];
  const [oy, om, od] = on.split('-').map(Number) as [number, number, number];
  return oy - by - (om < bm || (om === bm && od < bd) ? 1 : 0);
}

const compare = (v: number, op: Comparator, x: number) => (op === '>' ? v > x : op === '>=' ? v >= x : op === '<' ? v < x : v <= x);
const withinPast = (d: string | undefined, asOf: string, days: number | undefined) =>
  days === undefined || (d !== undefined && d >= addDays(asOf, -days) && d <= asOf);

function codeMatches(sel: CodeSelector, system: string | undefined, code: string): boolean {
  if (sel.code?.includes(code) && (sel.system === undefined || sel.system === (system ?? ''))) return true;
  return sel.valueSet !== undefined && inValueSet(sel.valueSet, system ?? '', code);
}

export function matches(node: SegmentNode, p: PatientState, asOf: string): boolean {
  if ('all' in node) return node.all.every((n) => matches(n, p, asOf));
  if ('any' in node) return node.any.some((n) => matches(n, p, asOf));
  if ('not' in node) return !matches(node.not, p, asOf);
  const f = p.facts;
  switch (node.type) {
    case 'gender':
      return f.gender !== undefined && node.value.includes(f.gender);
    case 'age': {
      const b = day(f.birthDate);
      if (!b) return false;
      const a = age(b, asOf);
      return a >= (node.min ?? 0) && (node.max === undefined || a <= node.max);
    }
    case 'state':
      return f.state !== undefined && node.value.some((v) => v.trim().toUpperCase() === f.state!.trim().toUpperCase());
    case 'city':
      return f.city !== undefined && node.value.some((v) => v.trim().toLowerCase() === f.city!.trim().toLowerCase());
    case 'postalCode': {
      const pc = f.postalCode?.replace(/\s+/g, '').toUpperCase();
      return pc !== undefined && pc !== '' && node.prefix.some((x) => pc.startsWith(x.replace(/\s+/g, '').toUpperCase()));
    }
    case 'pcp':
      return f.pcp !== undefined && node.value.some((v) => v.trim() === f.pcp!.reference || (f.pcp!.npi !== undefined && v.trim() === f.pcp!.npi));
    case 'lastVisit': {
      const d = day(f.lastVisit?.date);
      if (!d) return false;
      if (node.before !== undefined && !(d < node.before)) return false;
      if (node.after !== undefined && !(d > node.after)) return false;
      return withinPast(d, asOf, node.withinDays);
    }
    case 'lastVisitReason':
      return (f.lastVisit?.reasons ?? []).some((r) => codeMatches(node, r.system, r.code));
    case 'condition':
      return f.conditions.some((c) => {
        const active = c.clinicalStatus ? ['active', 'recurrence', 'relapse'].includes(c.clinicalStatus) : c.abatement === undefined;
        return (node.status === 'ever' || active) && c.codes.some((x) => codeMatches(node, x.system, x.code));
      });
    case 'hba1c': {
      const a = f.a1c ?? f.observations.find((o) => o.loinc === '4548-4');
      return a !== undefined && Number.isFinite(a.value) && compare(a.value, node.op, node.value) && withinPast(day(a.date), asOf, node.withinDays);
    }
    case 'observation':
      return f.observations.some(
        (o) => o.loinc === node.loinc && Number.isFinite(o.value) && compare(o.value, node.op, node.value) && withinPast(day(o.date), asOf, node.withinDays),
      );
    case 'coverage':
      return f.coverage.some((c) => {
        if (node.payer && !(c.payer && node.payer.some((x) => x.trim().toLowerCase() === c.payer!.trim().toLowerCase()))) return false;
        if (node.coverageType) {
          const kinds = [c.type?.code, c.type?.display].filter((x): x is string => Boolean(x)).map((x) => x.trim().toLowerCase());
          if (!node.coverageType.some((x) => kinds.includes(x.trim().toLowerCase()))) return false;
        }
        if (node.active === undefined) return true;
        const s = day(c.start);
        const e = day(c.end);
        const active = c.active && (!s || s <= asOf) && (!e || e >= asOf);
        return active === node.active;
      });
    case 'procedure':
      return f.procedures.some((x) => withinPast(day(x.date), asOf, node.withinDays) && x.codes.some((c) => codeMatches(node, c.system, c.code)));
    case 'medication':
      return f.medications.some((x) => withinPast(day(x.authoredOn), asOf, node.withinDays) && x.codes.some((c) => codeMatches(node, c.system, c.code)));
    case 'appointment':
      return f.appointments.some((a) => {
        const s = day(a.start);
        return ['proposed', 'pending', 'booked', 'arrived', 'checked-in', 'waitlist'].includes(a.status) && s !== undefined && s >= asOf && s <= addDays(asOf, node.withinDays);
      });
    case 'authorized':
      return p.authorized.has(node.purpose);
    case 'notSuppressed':
      return !p.suppressed;
  }
}
