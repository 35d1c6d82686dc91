// The Synthea sample patients the demo EHR serves beside the generated ones: bundles read from ../shared/fixtures/synthea and stored as a FHIR server holds them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, FhirResource } from 'fhir/r4.js';

/** Where the fixtures sit: `shared/` beside the repository (in CI as in development). */
export const syntheaFixtureDir = fileURLToPath(new URL('../../../shared/fixtures/synthea', import.meta.url));

/** Every bundle of the folder (patients, practitioners, hospitals); none when the folder is absent. */
export function readSyntheaBundles(dir = syntheaFixtureDir): Bundle[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Bundle)
    .filter((b) => b.resourceType === 'Bundle');
}

/**
 * The resources as a FHIR server stores them after a transaction: `urn:uuid:` references rewritten to `Type/id`
 * and a `meta.lastUpdated` on each.
 */
export function flattenBundles(bundles: readonly Bundle[], lastUpdated: string): FhirResource[] {
  const byFullUrl = new Map<string, string>();
  for (const b of bundles) for (const e of b.entry ?? []) if (e.fullUrl && e.resource?.id) byFullUrl.set(e.fullUrl, `${e.resource.resourceType}/${e.resource.id}`);
  const out: FhirResource[] = [];
  for (const b of bundles) {
    for (const e of b.entry ?? []) {
      if (!e.resource) continue;
      const text = JSON.stringify(e.resource).replace(/"reference":"(urn:uuid:[^"]+)"/g, (m, ref: string) => {
        const target = byFullUrl.get(ref);
        return target ? `"reference":"${target}"` : m;
      });
      const r = JSON.parse(text) as FhirResource;
      r.meta = { ...(r.meta ?? {}), lastUpdated };
      out.push(r);
    }
  }
  return out;
}
