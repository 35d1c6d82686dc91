// Calendar dates as day numbers (days since 1970-01-01, UTC), the unit every date column of the segment index uses.

/** The value a date column holds for "no date". Every range test excludes it. */
export const NO_DAY = -2147483648;
const MS_PER_DAY = 86_400_000;

/**
 * The day of an ISO date or date-time as written at its source (`2024-03-05T23:10:00-05:00` is 2024-03-05).
 * Partial FHIR dates count from their first day (`1970` is 1970-01-01, `1970-05` is 1970-05-01).
 */
export function dayNumber(iso: string | undefined): number {
  // Hand-parsed (no RegExp, no Date): the index calls this for every date of every patient at build time.
  if (!iso || iso.length < 4) return NO_DAY;
  const y = digits(iso, 0, 4);
  if (y < 0) return NO_DAY;
  let m = 1;
  let d = 1;
  if (iso.charCodeAt(4) === 45 /* - */) {
    const mm = digits(iso, 5, 2);
    if (mm >= 0) {
      m = mm;
      if (iso.charCodeAt(7) === 45) {
        const dd = digits(iso, 8, 2);
        if (dd >= 0) d = dd;
      }
    }
  }
  if (m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return NO_DAY;
  return daysFromCivil(y, m, d);
}

/** The number written by `n` ASCII digits at `from`, or -1. */
function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, m: number, d: number): number {
  const y = m <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The ISO date (YYYY-MM-DD) of a day number. */
export function isoDay(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

/** Today (UTC) as a day number. */
export function today(now: Date = new Date()): number {
  return Math.floor(now.getTime() / MS_PER_DAY);
}

const monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysInMonth(y: number, m: number): number {
  return m === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : monthDays[m - 1]!;
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
