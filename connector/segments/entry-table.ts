// A columnar table of per-patient entries (conditions, labs, coverage...) that can be replaced one patient at a time.

/**
 * Entries of one patient are appended together, so a patient's entries are one run starting at `rowStart[row]`.
 * Replacing a patient marks its run dead (`patient = -1`); the table compacts itself when half of it is dead.
 */
export class EntryTable {
  length = 0;
  private dead = 0;
  patient: Int32Array;
  readonly ints: Int32Array[];
  readonly nums: Float64Array[];
  private rowStart: Int32Array;

  constructor(intColumns: number, numColumns: number, rows: number, entries = 1024) {
    this.patient = new Int32Array(entries);
    this.ints = Array.from({ length: intColumns }, () => new Int32Array(entries));
    this.nums = Array.from({ length: numColumns }, () => new Float64Array(entries));
    this.rowStart = new Int32Array(rows).fill(-1);
  }

  get live(): number {
    return this.length - this.dead;
  }

  growRows(rows: number): void {
    const next = new Int32Array(rows).fill(-1);
    next.set(this.rowStart);
    this.rowStart = next;
  }

  /** The index of the first entry of `row`, or -1; its entries run while `patient[i] === row`. */
  start(row: number): number {
    return row < this.rowStart.length ? this.rowStart[row]! : -1;
  }

  /** Appends an entry of `row` and returns its index; the caller fills `ints[c][i]` and `nums[c][i]`. */
  add(row: number): number {
    if (this.length === this.patient.length) this.grow();
    const i = this.length++;
    this.patient[i] = row;
    if (this.rowStart[row] === -1) this.rowStart[row] = i;
    return i;
  }

  /** Drops every entry of `row`. */
  removeRow(row: number): void {
    let i = this.rowStart[row]!;
    if (i === -1) return;
    this.rowStart[row] = -1;
    while (i < this.length && this.patient[i] === row) {
      this.patient[i++] = -1;
      this.dead++;
    }
    if (this.dead > 4096 && this.dead * 2 > this.length) this.compact();
  }

  private grow(): void {
    const size = this.patient.length * 2;
    const patient = new Int32Array(size);
    patient.set(this.patient);
    this.patient = patient;
    for (let c = 0; c < this.ints.length; c++) {
      const col = new Int32Array(size);
      col.set(this.ints[c]!);
      this.ints[c] = col;
    }
    for (let c = 0; c < this.nums.length; c++) {
      const col = new Float64Array(size);
      col.set(this.nums[c]!);
      this.nums[c] = col;
    }
  }

  /** Moves live entries down over dead ones, in place, keeping their order. */
  private compact(): void {
    let to = 0;
    let previous = -1;
    for (let from = 0; from < this.length; from++) {
      const row = this.patient[from]!;
      if (row === -1) continue;
      if (row !== previous) this.rowStart[row] = to;
      previous = row;
      this.patient[to] = row;
      for (const col of this.ints) col[to] = col[from]!;
      for (const col of this.nums) col[to] = col[from]!;
      to++;
    }
    this.length = to;
    this.dead = 0;
  }

  /** Bytes held by the typed arrays. */
  bytes(): number {
    let n = this.patient.byteLength + this.rowStart.byteLength;
    for (const c of this.ints) n += c.byteLength;
    for (const c of this.nums) n += c.byteLength;
    return n;
  }
}
