// The Synthea fixtures as tests use them: bundles as read from disk, or flattened as a FHIR server would store them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle } from 'fhir/r4.js';

export const syntheaDir = '/work/shared/fixtures/synthea';

/** Every bundle: patient bundles plus the practitioner, hospital and group files. */
export function syntheaBundles(): Bundle[] {
  return readdirSync(syntheaDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(syntheaDir, f), 'utf8')) as Bundle)
    .filter((b) => b.resourceType === 'Bundle');
}

/** The bundle of one patient by file-name prefix (`Fannie_Waelchi`). */
export function syntheaPatientBundle(prefix: string): Bundle {
  const file = readdirSync(syntheaDir).find((f) => f.startsWith(`${prefix}_`));
  if (!file) throw new Error(`no fixture ${prefix}`);
  return JSON.parse(readFileSync(join(syntheaDir, file), 'utf8')) as Bundle;
}

type Resource = { resourceType: string; id?: string; meta?: { lastUpdated?: string }; [k: string]: unknown };

/**
 * What a FHIR server holds after loading the bundles: `urn:uuid:` references rewritten to `Type/id` and a
 * `meta.lastUpdated` on every resource.
 */
export function flattenForServer(bundles: readonly Bundle[], lastUpdated = '2024-01-01T00:00:00Z'): Resource[] {
  const byFullUrl = new Map<string, string>();
  for (const b of bundles) for (const e of b.entry ?? []) if (e.fullUrl && e.resource?.id) byFullUrl.set(e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`);
  const out: Resource[] = [];
  for (const b of bundles) {
    for (const e of b.entry ?? []) {
      if (!e.resource) continue;
      const text = JSON.stringify(e.resource).replace(/"reference":"(urn:uuid:[^"]+)"/g, (m, ref: string) => {
        const target = byFullUrl.get(ref);
        return target ? `"reference":"${target}"` : m;
      });
      const r = JSON.parse(text) as Resource;
      r.meta = { ...(r.meta ?? {}), lastUpdated };
      out.push(r);
    }
  }
  return out;
}
