// Calendar dates as day numbers (days since 1970-01-01, UTC), the unit every date column of the segment index uses.

/** The value a date column holds for "no date". Every range test excludes it. */
export const NO_DAY = -2147483648;
const MS_PER_DAY = 86_400_000;

/**
 * The day of an ISO date or date-time as written at its source (`2024-03-05T23:10:00-05:00` is 2024-03-05).
 * Partial FHIR dates count from their first day (`1970` is 1970-01-01, `1970-05` is 1970-05-01).
 */
export function dayNumber(iso: string | undefined): number {
  if (!iso) return NO_DAY;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(iso);
  if (!m) return NO_DAY;
  const y = Number(m[1]);
  const mo = m[2] ? Number(m[2]) : 1;
  const d = m[3] ? Number(m[3]) : 1;
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return NO_DAY;
  return Math.floor(Date.UTC(y, mo - 1, d) / MS_PER_DAY);
}

/** The ISO date (YYYY-MM-DD) of a day number. */
export function isoDay(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

/** Today (UTC) as a day number. */
export function today(now: Date = new Date()): number {
  return Math.floor(now.getTime() / MS_PER_DAY);
}

function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/**
 * The latest birth day of someone who is at least `years` old on `onDay`: the same calendar day `years` earlier
 * (29 February falls back to 28 February in a common year, since such a person has their birthday on 1 March).
 */
export function birthCutoff(onDay: number, years: number): number {
  const d = new Date(onDay * MS_PER_DAY);
  const y = d.getUTCFullYear() - years;
  const m = d.getUTCMonth() + 1;
  const day = Math.min(d.getUTCDate(), daysInMonth(y, m));
  return Math.floor(Date.UTC(y, m - 1, day) / MS_PER_DAY);
}

/** Completed years between a birth day and `onDay`. */
export function ageOn(birthDay: number, onDay: number): number {
  const b = new Date(birthDay * MS_PER_DAY);
  const o = new Date(onDay * MS_PER_DAY);
  let age = o.getUTCFullYear() - b.getUTCFullYear();
  const bm = b.getUTCMonth(), om = o.getUTCMonth();
  if (om < bm || (om === bm && o.getUTCDate() < b.getUTCDate())) age--;
  return age;
}
