// An in-memory browser.storage area (get/set/remove with the WebExtension semantics) for running the background's store outside a browser.
import type { Storage } from 'webextension-polyfill';

export class MemoryStorageArea {
  readonly items = new Map<string, unknown>();

  async get(keys?: null | string | string[] | Record<string, unknown>): Promise<Record<string, unknown>> {
    const clone = (v: unknown) => structuredClone(v);
    if (keys === null || keys === undefined) return Object.fromEntries([...this.items].map(([k, v]) => [k, clone(v)]));
    const names = typeof keys === 'string' ? [keys] : Array.isArray(keys) ? keys : Object.keys(keys);
    const out: Record<string, unknown> = {};
    for (const k of names) if (this.items.has(k)) out[k] = clone(this.items.get(k));
    return out;
  }

  async set(items: Record<string, unknown>): Promise<void> {
    for (const [k, v] of Object.entries(items)) this.items.set(k, structuredClone(v));
  }

  async remove(keys: string | string[]): Promise<void> {
    for (const k of typeof keys === 'string' ? [keys] : keys) this.items.delete(k);
  }

  async clear(): Promise<void> {
    this.items.clear();
  }

  /** Everything stored, serialised: what a dump of the area would show. */
  dump(): string {
    return JSON.stringify(Object.fromEntries(this.items));
  }

  asArea(): Storage.StorageArea {
    return this as unknown as Storage.StorageArea;
  }
}
