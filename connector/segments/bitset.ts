// Bitsets over index rows (Uint32Array words): what every predicate evaluates to, combined word by word.

/** Bit `r` of word `r >>> 5` is row `r`. */
export type Bitset = Uint32Array;

export const wordsFor = (rows: number): number => (rows + 31) >>> 5;

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

export function popcount(bits: Bitset): number {
  let n = 0;
  for (let w = 0; w < bits.length; w++) {
    const x = bits[w]!;
    if (x !== 0) n += popcount32(x);
  }
  return n;
}

export function hasBit(bits: Bitset, row: number): boolean {
  return (bits[row >>> 5]! & (1 << (row & 31))) !== 0;
}

export function setBit(bits: Bitset, row: number, on: boolean): void {
  if (on) bits[row >>> 5]! |= 1 << (row & 31);
  else bits[row >>> 5]! &= ~(1 << (row & 31));
}

/** a &= b */
export function andInPlace(a: Bitset, b: Bitset): Bitset {
  for (let w = 0; w < a.length; w++) a[w]! &= b[w]!;
  return a;
}

/** a |= b */
export function orInPlace(a: Bitset, b: Bitset): Bitset {
  for (let w = 0; w < a.length; w++) a[w]! |= b[w]!;
  return a;
}

/** a &= ~b */
export function andNotInPlace(a: Bitset, b: Bitset): Bitset {
  for (let w = 0; w < a.length; w++) a[w]! &= ~b[w]!;
  return a;
}

/** A bitset of `words` words grown (zero-filled) or copied. */
export function resized(bits: Bitset, words: number): Bitset {
  const out = new Uint32Array(words);
  out.set(bits.length <= words ? bits : bits.subarray(0, words));
  return out;
}

/** Up to `limit` set rows greater than `after`, in ascending order. */
export function setRowsAfter(bits: Bitset, after: number, limit: number): number[] {
  const out: number[] = [];
  let start = after + 1;
  if (start < 0) start = 0;
  for (let w = start >>> 5; w < bits.length && out.length < limit; w++) {
    let x = bits[w]!;
    if (x === 0) continue;
    if (w === start >>> 5) x &= ~0 << (start & 31);
    while (x !== 0 && out.length < limit) {
      const low = x & -x;
      out.push((w << 5) + 31 - Math.clz32(low));
      x ^= low;
    }
  }
  return out;
}
