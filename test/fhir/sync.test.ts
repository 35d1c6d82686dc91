// Endpoint sync end to end against the loopback server: search and bulk modes, incremental runs, quarantine, no PHI in logs.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { factsFromBundles } from '../../fhir/derive-facts.js';
import { FhirError } from '../../fhir/outcome.js';
import { syncEndpoint, type SyncProgress } from '../../fhir/sync.js';
import { createLogger } from '../../connector/logger.js';
import { startFhirTestServer, type FhirTestServer } from './support/fhir-test-server.js';
import { MemorySink } from './support/memory-sink.js';
import { registeredEndpoint } from './support/smart-client.js';
import { flattenForServer, syntheaBundles } from './support/synthea.js';

const now = new Date('2020-01-01T00:00:00Z');
const bundles = syntheaBundles();
const expected = factsFromBundles(bundles, { source: 'test-ehr', now }).facts;
const fast = { exportPolling: { defaultPollWaitMs: 0 } };
const derive = { derive: { now } };

let server: FhirTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const withoutUpdatedAt = <T extends { updatedAt?: string }>(f: T) => ({ ...f, updatedAt: undefined });

describe('syncEndpoint', () => {
  it('syncs by search to the same facts a reader of the bundles gets, and records where to resume', async () => {
    server = await startFhirTestServer({ resources: flattenForServer(bundles) });
    const sink = new MemorySink();
    const progress: SyncProgress[] = [];
    const summary = await syncEndpoint(registeredEndpoint(server), sink, { mode: 'search', batchSize: 300, onProgress: (p) => progress.push(p), clientOptions: { pageSize: 100 }, ...derive });
    expect(summary.patientsUpdated).toBe(13);
    expect(summary.resources).toMatchObject({ Patient: 13, Encounter: 122, Observation: 943, Practitioner: 29 + 203, Claim: 144, ExplanationOfBenefit: 122 });
    expect(summary.quarantined).toBe(0);
    for (const [id, f] of expected) expect(withoutUpdatedAt(sink.facts.get(`test-ehr/${id}`)!)).toEqual(withoutUpdatedAt(f));
    expect(sink.facts.get('test-ehr/3cbdd43e-7cb5-48b0-a097-47fecc7b4098')!.updatedAt).toBe('2024-01-01T00:00:00Z');
    expect(sink.states.get('test-ehr')).toMatchObject({ mode: 'search', since: summary.nextSince });
    expect(progress.at(-1)).toEqual({ phase: 'done', read: Object.values(summary.resources).reduce((a, b) => a + b, 0) });
    expect(progress.some((p) => p.phase === 'read' && p.total !== undefined)).toBe(true);
  });

  it('syncs incrementally with _lastUpdated from the stored state', async () => {
    const resources = flattenForServer(bundles, '2024-01-01T00:00:00Z');
    server = await startFhirTestServer({ resources });
    const sink = new MemorySink();
    const endpoint = registeredEndpoint(server);
    await syncEndpoint(endpoint, sink, { mode: 'search', ...derive });
    const since = sink.states.get('test-ehr')!.since!;
    // Myles Hoppe's chronic sinusitis (SNOMED 40055000) resolves after the first sync.
    const cond = resources.find((r) => r.resourceType === 'Condition' && JSON.stringify(r.code).includes('"40055000"'))!;
    cond.clinicalStatus = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }] };
    cond.meta = { lastUpdated: new Date(Date.parse(since) + 1000).toISOString() };
    server.requests.length = 0;
    const summary = await syncEndpoint(endpoint, sink, { mode: 'search', ...derive });
    expect(summary.since).toBe(since);
    expect(summary.patientsUpdated).toBe(1);
    expect(server.requests.find((r) => r.path === '/fhir/Condition')!.query._lastUpdated).toBe(`gt${since}`);
    const f = sink.facts.get('test-ehr/3cbdd43e-7cb5-48b0-a097-47fecc7b4098')!;
    expect(f.conditions.find((c) => c.id === cond.id)!.clinicalStatus).toBe('resolved');
    expect(f.conditions).toHaveLength(3);
    expect(f.pcp?.name).toBe('Dr. Alexandra Mayert');
  });

  it('syncs by Bulk $export, keeps transactionTime as the next _since and deletes the job', async () => {
    server = await startFhirTestServer({ resources: flattenForServer(bundles), export: { pollsBeforeReady: 2 } });
    const sink = new MemorySink();
    const progress: SyncProgress[] = [];
    const summary = await syncEndpoint(registeredEndpoint(server), sink, { mode: 'bulk', exportLevel: { kind: 'system' }, onProgress: (p) => progress.push(p), ...fast, ...derive });
    expect(summary.patientsUpdated).toBe(13);
    for (const [id, f] of expected) expect(withoutUpdatedAt(sink.facts.get(`test-ehr/${id}`)!)).toEqual(withoutUpdatedAt(f));
    expect(summary.nextSince).toBe(server.jobs[0]!.transactionTime);
    expect(sink.states.get('test-ehr')).toMatchObject({ mode: 'bulk', since: server.jobs[0]!.transactionTime });
    expect(server.jobs[0]!.deleted).toBe(true);
    expect(progress.filter((p) => p.phase === 'export').map((p) => p.exportProgress)).toEqual([undefined, '33% done', '67% done', undefined]);

    await syncEndpoint(registeredEndpoint(server), sink, { mode: 'bulk', ...fast, ...derive });
    expect(server.requests.filter((r) => r.path === '/fhir/Patient/$export').at(-1)!.query._since).toBe(summary.nextSince);
  });

  it('reads practitioners by search when a Patient-level export leaves them out', async () => {
    server = await startFhirTestServer({ resources: flattenForServer(bundles), export: { patientCompartmentOnly: true } });
    const sink = new MemorySink();
    await syncEndpoint(registeredEndpoint(server), sink, { mode: 'bulk', ...fast, ...derive });
    expect(server.requests.some((r) => r.path === '/fhir/Practitioner')).toBe(true);
    expect(sink.facts.get('test-ehr/3cbdd43e-7cb5-48b0-a097-47fecc7b4098')!.pcp).toMatchObject({ name: 'Dr. Alexandra Mayert', npi: '9999912499' });
  });

  it('quarantines a malformed line with its file and line number, and an invalid resource, and syncs the rest', async () => {
    const resources = flattenForServer(bundles);
    const patients = resources.filter((r) => r.resourceType === 'Patient').length;
    server = await startFhirTestServer({
      resources,
      export: {
        extraLines: {
          Patient: ['{"resourceType":"Patient","id":"broken","name":[{"family":"Secretname"}', JSON.stringify({ resourceType: 'Patient', id: 'bad-gender', gender: 'Secretgender', name: [{ family: 'Secretfamily' }] })],
          Observation: [JSON.stringify({ resourceType: 'Observation', id: 'bad-value', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] }, subject: { reference: 'Patient/p' }, valueQuantity: { value: '6.5 secret' } })],
        },
        errors: [{ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'could not export Patient Secretname' }] }],
      },
    });
    const sink = new MemorySink();
    const summary = await syncEndpoint(registeredEndpoint(server), sink, { mode: 'bulk', exportLevel: { kind: 'system' }, ...fast, ...derive });
    expect(summary.patientsUpdated).toBe(13);
    expect(summary.quarantined).toBe(4);
    expect(summary.resources['(unparsable)']).toBe(1);
    expect(summary.resources.Patient).toBe(patients + 1);
    const file = (type: string) => `${server!.url}/bulk-files/${server!.jobs[0]!.id}/${type}.ndjson`;
    expect(sink.quarantined.map(({ at, ...q }) => q)).toEqual([
      { endpoint: 'test-ehr', resourceType: 'Patient', path: '(json)', reason: 'malformed JSON', file: file('Patient'), line: patients + 1 },
      { endpoint: 'test-ehr', resourceType: 'Patient', resourceId: 'bad-gender', path: 'Patient.gender', reason: 'not one of the allowed values', file: file('Patient'), line: patients + 2 },
      { endpoint: 'test-ehr', resourceType: 'Observation', resourceId: 'bad-value', path: 'Observation.valueQuantity.value', reason: 'expected number', file: file('Observation'), line: 944 },
      { endpoint: 'test-ehr', resourceType: 'OperationOutcome', path: '(export)', reason: 'export error: exception', file: `${server.url}/bulk-files/${server.jobs[0]!.id}/errors.ndjson`, line: 1 },
    ]);
    expect(JSON.stringify(sink.quarantined)).not.toMatch(/Secret|secret-signature/);
  });

  it('sends Consent resources to writeConsents and quarantines resources that name no patient', async () => {
    const consent = { resourceType: 'Consent', id: 'k1', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] }, category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }], patient: { reference: 'Patient/3cbdd43e-7cb5-48b0-a097-47fecc7b4098' }, meta: { lastUpdated: '2024-01-01T00:00:00Z' } };
    const orphan = { resourceType: 'Condition', id: 'orphan', subject: { reference: 'Group/g1' }, meta: { lastUpdated: '2024-01-01T00:00:00Z' } };
    server = await startFhirTestServer({ resources: [...flattenForServer(bundles), consent, orphan] });
    const sink = new MemorySink();
    const summary = await syncEndpoint(registeredEndpoint(server), sink, { mode: 'search', ...derive });
    expect(summary.consents).toBe(1);
    expect(sink.consents[0]).toMatchObject({ resourceType: 'Consent', id: 'k1', status: 'active' });
    expect(sink.quarantined.map((q) => [q.resourceType, q.resourceId, q.path, q.reason])).toEqual([['Condition', 'orphan', 'Condition.subject', 'does not reference a Patient']]);
  });

  it('keeps resource content out of logs, errors and quarantine', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'trace', destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const resources = flattenForServer(bundles);
    server = await startFhirTestServer({ resources, export: { extraLines: { Patient: ['{"resourceType":"Patient","name":"Hoppe'] } } });
    server.fail({ match: /^GET \/fhir\/bulk-status\//, status: 429, retryAfter: '0' });
    const sink = new MemorySink();
    await syncEndpoint(registeredEndpoint(server), sink, { mode: 'bulk', exportLevel: { kind: 'system' }, log, ...fast, ...derive });
    server.fail({ match: /^GET \/fhir\/Encounter$/, status: 500, times: 1, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'Encounter of Myles Hoppe born 1991-04-23 failed' }] } });
    const err = await syncEndpoint(registeredEndpoint(server), sink, { mode: 'search', log, full: true, ...derive }).catch((e: FhirError) => e);
    expect(err).toBeInstanceOf(FhirError);
    const phi = ['Myles', 'Hoppe', '1991-04-23', '555-585-7546', 'Swansea', 'Chronic sinusitis', 'Cigna', 'Alexandra', '23.41'];
    const text = [...lines, JSON.stringify(sink.quarantined), (err as FhirError).message, JSON.stringify((err as FhirError).details)].join('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const word of phi) expect(text).not.toContain(word);
  });
});
