// The in-memory columnar segment index: decrypted patient facts as typed-array columns, updated one patient at a time.
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { reveal } from '../../fhir/phi.js';
import { fail } from '../errors.js';
import { setBit, hasBit, resized, wordsFor, type Bitset } from './bitset.js';
import { dayNumber, NO_DAY } from './day-number.js';
import { CodeDictionary, Dictionary } from './dictionary.js';
import { EntryTable } from './entry-table.js';

/** One patient as the store hands it over: its internal id and its decrypted facts. */
export interface IndexedFacts {
  id: number;
  facts: PatientFacts;
}

/** Internal ids are the store's serial patient ids; rows are those ids, so member order is id order. */
export const MAX_PATIENT_ID = 2 ** 27;

export const genderCodes = { male: 1, female: 2, other: 3, unknown: 4 } as const;
export const HBA1C_LOINC = '4548-4';
/** Condition statuses that make a condition active. */
export const activeConditionStatuses: ReadonlySet<string> = new Set(['active', 'recurrence', 'relapse']);
/** Appointment statuses that still lie ahead. */
export const upcomingAppointmentStatuses: ReadonlySet<string> = new Set(['proposed', 'pending', 'booked', 'arrived', 'checked-in', 'waitlist']);

// Column positions inside the entry tables.
export const CONDITION = { code: 0, active: 1 } as const;
export const OBSERVATION = { loinc: 0, day: 1, value: 0 } as const;
export const COVERAGE = { payer: 0, typeCode: 1, typeText: 2, active: 3, start: 4, end: 5 } as const;
export const DATED_CODE = { code: 0, day: 1 } as const;
export const APPOINTMENT = { start: 0 } as const;

/** Normal forms the index and the predicates agree on. */
export const normalize = {
  state: (s: string) => s.trim().toUpperCase(),
  city: (s: string) => s.trim().toLowerCase(),
  postalCode: (s: string) => s.replace(/\s+/g, '').toUpperCase(),
  payer: (s: string) => s.trim().toLowerCase(),
  coverageType: (s: string) => s.trim().toLowerCase(),
};

export interface SegmentIndexOptions {
  /** Rows to allocate up front (grows by doubling as larger ids arrive). */
  capacity?: number;
}

export class SegmentIndex {
  /** Rows allocated: always a multiple of 32. */
  capacity: number;
  /** Rows holding facts: the universe every predicate is taken within. */
  present: Bitset;
  suppressed: Bitset;
  readonly authorized = new Map<string, Bitset>();
  /** Patients with facts. */
  size = 0;
  /** Bumped on every change, so callers can tell a stale result. */
  version = 0;

  gender: Uint8Array;
  birthDay: Int32Array;
  state: Int32Array;
  city: Int32Array;
  postalCode: Int32Array;
  pcpReference: Int32Array;
  pcpNpi: Int32Array;
  lastVisitDay: Int32Array;
  a1cValue: Float64Array;
  a1cDay: Int32Array;
  /**
   * The days a patient is covered, as one [from, to] pair per row (interleaved, one cache line): the union of the
   * active coverage periods when it is one interval; empty is [1, 0]; COVERAGE_GAPS in `from` when the union has
   * gaps (the entries are then read instead).
   */
  coveredDays: Int32Array;
  /** First letters of given and family name (for the masked preview only). */
  initials: Uint16Array;

  private a1cOrder: A1cOrder | undefined;
  private a1cOrderPending = false;

  readonly dict = {
    state: new Dictionary(),
    city: new Dictionary(),
    postalCode: new Dictionary(),
    practitioner: new Dictionary(),
    payer: new Dictionary(),
    coverageType: new Dictionary(),
    loinc: new Dictionary(),
    code: new CodeDictionary(),
  };

  readonly lastVisitReasons: EntryTable;
  readonly conditions: EntryTable;
  readonly observations: EntryTable;
  readonly coverage: EntryTable;
  readonly procedures: EntryTable;
  readonly medications: EntryTable;
  readonly appointments: EntryTable;

  constructor(options: SegmentIndexOptions = {}) {
    const rows = roundRows(options.capacity ?? 1024);
    this.capacity = rows;
    this.present = new Uint32Array(wordsFor(rows));
    this.suppressed = new Uint32Array(wordsFor(rows));
    this.gender = new Uint8Array(rows);
    this.birthDay = new Int32Array(rows).fill(NO_DAY);
    this.state = new Int32Array(rows);
    this.city = new Int32Array(rows);
    this.postalCode = new Int32Array(rows);
    this.pcpReference = new Int32Array(rows);
    this.pcpNpi = new Int32Array(rows);
    this.lastVisitDay = new Int32Array(rows).fill(NO_DAY);
    this.a1cValue = new Float64Array(rows).fill(Number.NaN);
    this.a1cDay = new Int32Array(rows).fill(NO_DAY);
    this.coveredDays = emptyCoverage(rows);
    this.initials = new Uint16Array(rows * 2);
    const entries = Math.max(1024, rows);
    this.lastVisitReasons = new EntryTable(1, 0, rows, entries);
    this.conditions = new EntryTable(2, 0, rows, entries * 4);
    this.observations = new EntryTable(2, 1, rows, entries * 4);
    this.coverage = new EntryTable(6, 0, rows, entries * 2);
    this.procedures = new EntryTable(2, 0, rows, entries * 4);
    this.medications = new EntryTable(2, 0, rows, entries * 2);
    this.appointments = new EntryTable(1, 0, rows, entries);
  }

  /**
   * Builds the index from every patient's facts: the store's iterator of decrypted facts, one at a time or in pages.
   * Nothing of it is ever written anywhere: the index lives in this process only.
   */
  static async build(
    source: AsyncIterable<IndexedFacts | readonly IndexedFacts[]> | Iterable<IndexedFacts | readonly IndexedFacts[]>,
    options: SegmentIndexOptions = {},
  ): Promise<SegmentIndex> {
    const index = new SegmentIndex(options);
    const take = (item: IndexedFacts | readonly IndexedFacts[]) => {
      if (Array.isArray(item)) for (const one of item as readonly IndexedFacts[]) index.upsert(one.id, one.facts);
      else index.upsert((item as IndexedFacts).id, (item as IndexedFacts).facts);
    };
    if (Symbol.asyncIterator in source) for await (const item of source) take(item);
    else for (const item of source) take(item);
    index.sortA1c();
    return index;
  }

  has(id: number): boolean {
    return id >= 0 && id < this.capacity && hasBit(this.present, id);
  }

  /** Inserts or replaces one patient's facts. */
  upsert(id: number, facts: PatientFacts): void {
    this.ensureRow(id);
    const row = id;
    if (hasBit(this.present, row)) this.clearEntries(row);
    else this.size++;
    setBit(this.present, row, true);
    this.version++;

    this.gender[row] = facts.gender ? genderCodes[facts.gender] ?? 0 : 0;
    this.birthDay[row] = dayNumber(facts.birthDate ? reveal(facts.birthDate) : undefined);
    this.state[row] = facts.state ? this.dict.state.intern(normalize.state(facts.state)) : 0;
    this.city[row] = facts.city ? this.dict.city.intern(normalize.city(reveal(facts.city))) : 0;
    this.postalCode[row] = facts.postalCode ? this.dict.postalCode.intern(normalize.postalCode(reveal(facts.postalCode))) : 0;
    this.pcpReference[row] = facts.pcp ? this.dict.practitioner.intern(facts.pcp.reference) : 0;
    this.pcpNpi[row] = facts.pcp?.npi ? this.dict.practitioner.intern(facts.pcp.npi) : 0;
    this.lastVisitDay[row] = dayNumber(facts.lastVisit?.date);
    const a1c = facts.a1c ?? facts.observations.find((o) => o.loinc === HBA1C_LOINC);
    const a1cValue = a1c && Number.isFinite(a1c.value) ? a1c.value : Number.NaN;
    if (!Object.is(this.a1cValue[row], a1cValue)) this.a1cOrder = undefined;
    this.a1cValue[row] = a1cValue;
    this.a1cDay[row] = a1c ? dayNumber(a1c.date) : NO_DAY;
    this.initials[row * 2] = facts.given ? reveal(facts.given).trim().toUpperCase().charCodeAt(0) || 0 : 0;
    this.initials[row * 2 + 1] = facts.family ? reveal(facts.family).trim().toUpperCase().charCodeAt(0) || 0 : 0;

    const code = this.dict.code;
    for (const reason of facts.lastVisit?.reasons ?? []) {
      const i = this.lastVisitReasons.add(row);
      this.lastVisitReasons.ints[0]![i] = code.internCode(reason.system, reason.code);
    }
    for (const condition of facts.conditions) {
      const active = condition.clinicalStatus
        ? activeConditionStatuses.has(condition.clinicalStatus)
        : condition.abatement === undefined;
      for (const c of condition.codes) {
        const i = this.conditions.add(row);
        this.conditions.ints[CONDITION.code]![i] = code.internCode(c.system, c.code);
        this.conditions.ints[CONDITION.active]![i] = active ? 1 : 0;
      }
    }
    for (const o of facts.observations) {
      if (!Number.isFinite(o.value)) continue;
      const i = this.observations.add(row);
      this.observations.ints[OBSERVATION.loinc]![i] = this.dict.loinc.intern(o.loinc);
      this.observations.ints[OBSERVATION.day]![i] = dayNumber(o.date);
      this.observations.nums[OBSERVATION.value]![i] = o.value;
    }
    this.setCoveredDays(row, facts);
    for (const c of facts.coverage) {
      const i = this.coverage.add(row);
      const cols = this.coverage.ints;
      cols[COVERAGE.payer]![i] = c.payer ? this.dict.payer.intern(normalize.payer(c.payer)) : 0;
      cols[COVERAGE.typeCode]![i] = c.type?.code ? this.dict.coverageType.intern(normalize.coverageType(c.type.code)) : 0;
      cols[COVERAGE.typeText]![i] = c.type?.display ? this.dict.coverageType.intern(normalize.coverageType(c.type.display)) : 0;
      cols[COVERAGE.active]![i] = c.active ? 1 : 0;
      cols[COVERAGE.start]![i] = dayNumber(c.start);
      cols[COVERAGE.end]![i] = dayNumber(c.end);
    }
    for (const p of facts.procedures) {
      const day = dayNumber(p.date);
      for (const c of p.codes) {
        const i = this.procedures.add(row);
        this.procedures.ints[DATED_CODE.code]![i] = code.internCode(c.system, c.code);
        this.procedures.ints[DATED_CODE.day]![i] = day;
      }
    }
    for (const m of facts.medications) {
      const day = dayNumber(m.authoredOn);
      for (const c of m.codes) {
        const i = this.medications.add(row);
        this.medications.ints[DATED_CODE.code]![i] = code.internCode(c.system, c.code);
        this.medications.ints[DATED_CODE.day]![i] = day;
      }
    }
    for (const a of facts.appointments) {
      if (!upcomingAppointmentStatuses.has(a.status)) continue;
      const start = dayNumber(a.start);
      if (start === NO_DAY) continue;
      const i = this.appointments.add(row);
      this.appointments.ints[APPOINTMENT.start]![i] = start;
    }
  }

  /** Drops a patient's facts (its authorization and suppression state stay: they belong to the consent registry). */
  remove(id: number): void {
    if (!this.has(id)) return;
    this.clearEntries(id);
    setBit(this.present, id, false);
    this.gender[id] = 0;
    this.birthDay[id] = NO_DAY;
    this.state[id] = this.city[id] = this.postalCode[id] = this.pcpReference[id] = this.pcpNpi[id] = 0;
    this.lastVisitDay[id] = NO_DAY;
    if (!Number.isNaN(this.a1cValue[id]!)) this.a1cOrder = undefined;
    this.a1cValue[id] = Number.NaN;
    this.a1cDay[id] = NO_DAY;
    this.coveredDays[id * 2] = 1;
    this.coveredDays[id * 2 + 1] = 0;
    this.initials[id * 2] = this.initials[id * 2 + 1] = 0;
    this.size--;
    this.version++;
  }

  /** Records whether the patient holds an active authorization for `purpose` (fed by the consent registry). */
  setAuthorized(id: number, purpose: string, allowed: boolean): void {
    this.ensureRow(id);
    let bits = this.authorized.get(purpose);
    if (!bits) {
      if (!allowed) return;
      bits = new Uint32Array(wordsFor(this.capacity));
      this.authorized.set(purpose, bits);
    }
    setBit(bits, id, allowed);
    this.version++;
  }

  /** Records whether the patient is suppressed (opted out of all outreach, bounced, deceased...). */
  setSuppressed(id: number, suppressed: boolean): void {
    this.ensureRow(id);
    setBit(this.suppressed, id, suppressed);
    this.version++;
  }

  /** Bytes held by the columns, bitsets and entry tables (dictionaries excluded). */
  bytes(): number {
    let n = this.present.byteLength + this.suppressed.byteLength;
    for (const b of this.authorized.values()) n += b.byteLength;
    for (const col of [this.gender, this.birthDay, this.state, this.city, this.postalCode, this.pcpReference, this.pcpNpi, this.lastVisitDay, this.a1cValue, this.a1cDay, this.coveredDays, this.initials]) {
      n += col.byteLength;
    }
    for (const t of this.tables()) n += t.bytes();
    if (this.a1cOrder) n += this.a1cOrder.rows.byteLength + this.a1cOrder.values.byteLength;
    return n;
  }

  /**
   * Rows with an HbA1c in ascending value order, so `> x` is a binary search instead of a column scan. After a change
   * it is undefined (callers scan) and is re-sorted on a timer, off the query path.
   */
  a1cByValue(): A1cOrder | undefined {
    if (this.a1cOrder) return this.a1cOrder;
    if (!this.a1cOrderPending) {
      this.a1cOrderPending = true;
      const timer = setTimeout(() => {
        this.a1cOrderPending = false;
        this.sortA1c();
      }, 0);
      timer.unref();
    }
    return undefined;
  }

  /** Sorts the HbA1c rows now (the timer does it after changes; tests call it to take the sorted path). */
  sortA1c(): A1cOrder {
    let n = 0;
    for (let r = 0; r < this.capacity; r++) if (this.a1cValue[r] === this.a1cValue[r]) n++;
    const rows = new Int32Array(n);
    let k = 0;
    for (let r = 0; r < this.capacity; r++) if (this.a1cValue[r] === this.a1cValue[r]) rows[k++] = r;
    const values = this.a1cValue;
    rows.sort((a, b) => values[a]! - values[b]! || a - b);
    const sorted = new Float64Array(n);
    for (let i = 0; i < n; i++) sorted[i] = values[rows[i]!]!;
    this.a1cOrder = { rows, values: sorted };
    return this.a1cOrder;
  }

  /** Merges the active coverage periods; one interval goes in the row, gaps are flagged. */
  private setCoveredDays(row: number, facts: PatientFacts): void {
    const periods: Array<[number, number]> = [];
    for (const c of facts.coverage) {
      if (!c.active) continue;
      const s = dayNumber(c.start);
      const e = dayNumber(c.end);
      const from = s === NO_DAY ? NO_DAY + 1 : s;
      const to = e === NO_DAY ? MAX_DAY : e;
      if (from <= to) periods.push([from, to]);
    }
    let from = 1;
    let to = 0;
    if (periods.length > 0) {
      periods.sort((a, b) => a[0] - b[0]);
      [from, to] = periods[0]!;
      for (let i = 1; i < periods.length; i++) {
        const [f, t] = periods[i]!;
        if (f > to + 1) {
          from = COVERAGE_GAPS;
          to = 0;
          break;
        }
        if (t > to) to = t;
      }
    }
    this.coveredDays[row * 2] = from;
    this.coveredDays[row * 2 + 1] = to;
  }

  private tables(): EntryTable[] {
    return [this.lastVisitReasons, this.conditions, this.observations, this.coverage, this.procedures, this.medications, this.appointments];
  }

  private clearEntries(row: number): void {
    for (const t of this.tables()) t.removeRow(row);
  }

  private ensureRow(id: number): void {
    if (!Number.isSafeInteger(id) || id < 0 || id >= MAX_PATIENT_ID) {
      throw fail('BAD_REQUEST', `patient id ${String(id)} is outside the segment index range 0..${MAX_PATIENT_ID - 1}`);
    }
    if (id < this.capacity) return;
    let rows = this.capacity;
    while (rows <= id) rows *= 2;
    this.grow(rows);
  }

  private grow(rows: number): void {
    const words = wordsFor(rows);
    this.present = resized(this.present, words);
    this.suppressed = resized(this.suppressed, words);
    for (const [purpose, bits] of this.authorized) this.authorized.set(purpose, resized(bits, words));
    this.gender = grownU8(this.gender, rows);
    this.birthDay = grownI32(this.birthDay, rows, NO_DAY);
    this.state = grownI32(this.state, rows, 0);
    this.city = grownI32(this.city, rows, 0);
    this.postalCode = grownI32(this.postalCode, rows, 0);
    this.pcpReference = grownI32(this.pcpReference, rows, 0);
    this.pcpNpi = grownI32(this.pcpNpi, rows, 0);
    this.lastVisitDay = grownI32(this.lastVisitDay, rows, NO_DAY);
    const a1c = new Float64Array(rows).fill(Number.NaN);
    a1c.set(this.a1cValue);
    this.a1cValue = a1c;
    this.a1cDay = grownI32(this.a1cDay, rows, NO_DAY);
    const covered = emptyCoverage(rows);
    covered.set(this.coveredDays);
    this.coveredDays = covered;
    const initials = new Uint16Array(rows * 2);
    initials.set(this.initials);
    this.initials = initials;
    for (const t of this.tables()) t.growRows(rows);
    this.capacity = rows;
  }
}

/** Rows holding an HbA1c, ascending by value, and the values in that order. */
export interface A1cOrder {
  rows: Int32Array;
  values: Float64Array;
}

/** The largest day number (open-ended periods end here). */
export const MAX_DAY = 2147483647;
/** `coveredDays[2r]` when row r's active coverage periods leave gaps. */
export const COVERAGE_GAPS = NO_DAY;

function emptyCoverage(rows: number): Int32Array {
  const out = new Int32Array(rows * 2);
  for (let i = 0; i < out.length; i += 2) out[i] = 1;
  return out;
}

function roundRows(n: number): number {
  let rows = 1024;
  while (rows < n) rows *= 2;
  return rows;
}

function grownI32(col: Int32Array, rows: number, fill: number): Int32Array {
  const out = new Int32Array(rows);
  if (fill !== 0) out.fill(fill, col.length);
  out.set(col);
  return out;
}

function grownU8(col: Uint8Array, rows: number): Uint8Array {
  const out = new Uint8Array(rows);
  out.set(col);
  return out;
}
