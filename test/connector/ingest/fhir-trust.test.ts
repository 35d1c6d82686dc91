// FHIR over verified TLS: an EHR with a private CA is trusted through OUTREACH_EXTRA_CA_FILE, an unknown CA is refused by name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../connector/config.js';
import { withFhirTrust } from '../../../connector/ingest/endpoint-sync.js';
import { FhirClient } from '../../../fhir/client.js';
import { FhirError } from '../../../fhir/outcome.js';
import { syncEndpoint } from '../../../fhir/sync.js';
import { createTestCa } from '../../support/test-ca.js';
import { startFhirTestServer, type FhirTestServer } from '../../fhir/support/fhir-test-server.js';
import { MemorySink } from '../../fhir/support/memory-sink.js';
import { registeredEndpoint } from '../../fhir/support/smart-client.js';
import { flattenForServer, syntheaPatientBundle } from '../../fhir/support/synthea.js';

const dir = mkdtempSync(join(tmpdir(), 'outreach-fhir-tls-'));
const ca = createTestCa();
let server: FhirTestServer;

beforeAll(async () => {
  server = await startFhirTestServer({ tls: ca.leaf(['127.0.0.1']), resources: flattenForServer([syntheaPatientBundle('Myles_Hoppe')]) });
  writeFileSync(join(dir, 'extra-ca.pem'), ca.cert);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('FHIR endpoints behind a private CA', () => {
  it('syncs over TLS when the CA is in OUTREACH_EXTRA_CA_FILE', async () => {
    const config = loadConfig({ OUTREACH_HOME: dir, OUTREACH_EXTRA_CA_FILE: join(dir, 'extra-ca.pem') });
    const sink = new MemorySink();
    const summary = await withFhirTrust(config, (fetchOptions) => syncEndpoint(registeredEndpoint(server), sink, { clientOptions: { fetchOptions } }));
    expect(server.url.startsWith('https://')).toBe(true);
    expect(summary.patientsUpdated).toBe(1);
    expect(sink.facts.get('test-ehr/3cbdd43e-7cb5-48b0-a097-47fecc7b4098')?.pcp?.name).toBe('Dr. Alexandra Mayert');
  });

  it('refuses the endpoint without the CA and names the certificate failure', async () => {
    const config = loadConfig({ OUTREACH_HOME: dir });
    const err = await withFhirTrust(config, async (fetchOptions) => {
      for await (const r of new FhirClient(registeredEndpoint(server), { fetchOptions }).search('Patient')) void r;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).message).toMatch(/^FHIR endpoint "test-ehr" \(127\.0\.0\.1:\d+\) is unreachable during the SMART discovery: UNABLE_TO_VERIFY_LEAF_SIGNATURE$/);
  });
});
