// The Synthea fixtures as tests use them: bundles as read from disk, or flattened as a FHIR server would store them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle } from 'fhir/r4.js';
import { flattenBundles, readSyntheaBundles, syntheaFixtureDir } from '../../../connector/demo/synthea-fixtures.js';

export const syntheaDir = syntheaFixtureDir;

/** Every bundle: patient bundles plus the practitioner, hospital and group files; a test without them fails loudly. */
export function syntheaBundles(): Bundle[] {
  const bundles = readSyntheaBundles(syntheaDir);
  if (bundles.length === 0) throw new Error(`no Synthea fixtures in ${syntheaDir}`);
  return bundles;
}

/** The bundle of one patient by file-name prefix (`Fannie_Waelchi`). */
export function syntheaPatientBundle(prefix: string): Bundle {
  const file = readdirSync(syntheaDir).find((f) => f.startsWith(`${prefix}_`));
  if (!file) throw new Error(`no fixture ${prefix}`);
  return JSON.parse(readFileSync(join(syntheaDir, file), 'utf8')) as Bundle;
}

/** A resource as the FHIR test server takes it (any resource type, loosely typed). */
type Resource = { resourceType: string; id?: string; meta?: { lastUpdated?: string }; [k: string]: unknown };

/**
 * What a FHIR server holds after loading the bundles: `urn:uuid:` references rewritten to `Type/id` and a
 * `meta.lastUpdated` on every resource (the demo EHR's own flattening).
 */
export function flattenForServer(bundles: readonly Bundle[], lastUpdated = '2024-01-01T00:00:00Z'): Resource[] {
  return flattenBundles(bundles, lastUpdated) as unknown as Resource[];
}
