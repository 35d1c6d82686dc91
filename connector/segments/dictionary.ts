// String dictionaries of the segment index: each distinct value (state, city, payer, code...) gets a small integer id.

/** Id 0 means "no value"; ids are never reused, so a mask built over ids stays valid as the dictionary grows. */
export class Dictionary {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [''];

  get size(): number {
    return this.values.length;
  }

  /** The id of `value`, adding it when new (`undefined` and the empty string are 0). */
  intern(value: string | undefined): number {
    if (!value) return 0;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }

  /** The id of `value`, or 0 when the index has never seen it. */
  find(value: string): number {
    return this.ids.get(value) ?? 0;
  }

  /** A membership mask over ids: mask[id] = 1 when `test(value)`. */
  mask(test: (value: string, id: number) => boolean): Uint8Array {
    const mask = new Uint8Array(this.values.length);
    for (let id = 1; id < this.values.length; id++) if (test(this.values[id]!, id)) mask[id] = 1;
    return mask;
  }

  /** A mask of exactly these values. */
  maskOf(values: readonly string[]): Uint8Array {
    const mask = new Uint8Array(this.values.length);
    for (const v of values) {
      const id = this.ids.get(v);
      if (id !== undefined) mask[id] = 1;
    }
    return mask;
  }
}

/** Codes as `system|code`, with the parts kept apart for value-set and any-system matching. */
export class CodeDictionary extends Dictionary {
  readonly systems: string[] = [''];
  readonly codes: string[] = [''];

  /** Two levels (system, then code), so the hot build path never concatenates a key. */
  private readonly bySystem = new Map<string, Map<string, number>>();

  internCode(system: string | undefined, code: string): number {
    const sys = system ?? '';
    let codes = this.bySystem.get(sys);
    if (!codes) this.bySystem.set(sys, (codes = new Map()));
    let id = codes.get(code);
    if (id === undefined) {
      const before = this.size;
      id = this.intern(`${sys}|${code}`);
      if (id === before) {
        this.systems.push(sys);
        this.codes.push(code);
      }
      codes.set(code, id);
    }
    return id;
  }
}
