// Bulk Data $export against the loopback server: kick-off, polling with X-Progress, NDJSON streaming, error files, delete.
import { afterEach, describe, expect, it } from 'vitest';
import { BulkExportJob, type ExportStatus } from '../../fhir/bulk-export.js';
import { FhirClient } from '../../fhir/client.js';
import { ndjsonLines } from '../../fhir/ndjson.js';
import { FhirError } from '../../fhir/outcome.js';
import { startFhirTestServer, type FhirTestServer } from './support/fhir-test-server.js';
import { registeredEndpoint } from './support/smart-client.js';

let server: FhirTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const resources = [
  ...Array.from({ length: 5 }, (_, i) => ({ resourceType: 'Patient', id: `p${i}`, meta: { lastUpdated: '2024-01-01T00:00:00Z' } })),
  ...Array.from({ length: 7 }, (_, i) => ({ resourceType: 'Condition', id: `c${i}`, subject: { reference: `Patient/p${i % 5}` }, meta: { lastUpdated: i < 3 ? '2023-01-01T00:00:00Z' : '2024-06-01T00:00:00Z' } })),
];

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('Bulk Data $export', () => {
  it('kicks off with respond-async, polls until ready and reports X-Progress', async () => {
    server = await startFhirTestServer({ resources, export: { pollsBeforeReady: 3 } });
    const statuses: ExportStatus[] = [];
    const client = new FhirClient(registeredEndpoint(server));
    const job = await BulkExportJob.kickOff(client, { types: ['Patient', 'Condition'], onStatus: (s) => statuses.push(s) });
    const manifest = await job.manifest();
    expect(server.requests.find((r) => r.path === '/fhir/Patient/$export')?.query).toMatchObject({ _type: 'Patient,Condition', _outputFormat: 'application/fhir+ndjson' });
    expect(statuses.map((s) => s.phase)).toEqual(['accepted', 'in-progress', 'in-progress', 'in-progress', 'complete']);
    expect(statuses[1]!.progress).toBe('25% done');
    expect(manifest.transactionTime).toBe(server.jobs[0]!.transactionTime);
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 5], ['Condition', 7]]);
  });

  it('streams each file line by line with line numbers, sending the token when required', async () => {
    server = await startFhirTestServer({ resources, export: { requiresAccessToken: true } });
    const client = new FhirClient(registeredEndpoint(server));
    const job = await BulkExportJob.kickOff(client, { level: { kind: 'system' } });
    const manifest = await job.manifest();
    const lines = await all(job.lines(manifest.output.find((o) => o.type === 'Condition')!, manifest.requiresAccessToken));
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(JSON.parse(lines[6]!.text!).id).toBe('c6');
    const download = server.requests.find((r) => r.path.endsWith('Condition.ndjson'))!;
    expect(download.authorized).toBe(true);
    expect(server.requests.find((r) => r.path === '/fhir/$export')).toBeDefined();
  });

  it('leaves the token off downloads when the manifest does not require it', async () => {
    server = await startFhirTestServer({ resources, export: { requiresAccessToken: false } });
    const client = new FhirClient(registeredEndpoint(server));
    const job = await BulkExportJob.kickOff(client, { level: { kind: 'group', groupId: 'g1' } });
    const manifest = await job.manifest();
    expect(await all(job.lines(manifest.output[0]!, manifest.requiresAccessToken))).toHaveLength(5);
    expect(server.requests.find((r) => r.path.endsWith('Patient.ndjson'))!.bearer).toBeUndefined();
    expect(server.jobs[0]!.level).toBe('group:g1');
  });

  it('exports only changes with _since', async () => {
    server = await startFhirTestServer({ resources });
    const job = await BulkExportJob.kickOff(new FhirClient(registeredEndpoint(server)), { types: ['Condition'], since: '2024-01-01T00:00:00Z' });
    const manifest = await job.manifest();
    expect(manifest.output).toEqual([expect.objectContaining({ type: 'Condition', count: 4 })]);
  });

  it('reads the error files as quarantine items without the diagnostics text', async () => {
    server = await startFhirTestServer({
      resources,
      export: { errors: [{ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics: 'Patient Jane Doe 1970-01-01 failed', expression: ['Patient.birthDate'] }] }] },
    });
    const job = await BulkExportJob.kickOff(new FhirClient(registeredEndpoint(server)));
    const items = await all(job.errorItems(await job.manifest()));
    expect(items).toEqual([{ resourceType: 'OperationOutcome', path: 'Patient.birthDate', reason: 'export error: processing', file: expect.stringContaining('errors.ndjson'), line: 1 }]);
    expect(JSON.stringify(items)).not.toContain('Jane');
  });

  it('deletes the job when done', async () => {
    server = await startFhirTestServer({ resources });
    const job = await BulkExportJob.kickOff(new FhirClient(registeredEndpoint(server)));
    await job.manifest();
    await job.delete();
    expect(server.jobs[0]!.deleted).toBe(true);
    expect(server.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
  });

  it('retries a throttled status poll', async () => {
    server = await startFhirTestServer({ resources });
    server.fail({ match: /^GET \/fhir\/bulk-status\//, status: 429, retryAfter: '0', times: 2 });
    const job = await BulkExportJob.kickOff(new FhirClient(registeredEndpoint(server)));
    expect((await job.manifest()).output.length).toBeGreaterThan(0);
  });

  it('fails clearly when the server refuses the kick-off', async () => {
    server = await startFhirTestServer({ resources, export: { refuseKickoff: { status: 400, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported', diagnostics: 'no' }] } } } });
    const err = await BulkExportJob.kickOff(new FhirClient(registeredEndpoint(server))).catch((e: FhirError) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).code).toBe('FHIR_EXPORT_FAILED');
    expect((err as FhirError).message).toBe('endpoint "test-ehr" did not accept the $export (HTTP 400, not-supported)');
  });
});

describe('NDJSON framing', () => {
  async function* chunks(...parts: Array<string | Uint8Array>) {
    for (const p of parts) yield p;
  }

  it('splits lines across chunk boundaries, CRLF and multi-byte characters included', async () => {
    const bytes = Buffer.from('{"a":"é"}\r\n\n{"b":2}\n{"c":3}', 'utf8');
    const lines = await all(ndjsonLines(chunks(bytes.subarray(0, 7), bytes.subarray(7, 8), bytes.subarray(8))));
    expect(lines).toEqual([
      { line: 1, text: '{"a":"é"}' },
      { line: 3, text: '{"b":2}' },
      { line: 4, text: '{"c":3}' },
    ]);
  });

  it('drops a line longer than the limit and keeps counting', async () => {
    const lines = await all(ndjsonLines(chunks('{"a":1}\n', 'x'.repeat(50), 'y'.repeat(50), '\n{"b":2}\n'), { maxLineChars: 64 }));
    expect(lines).toEqual([{ line: 1, text: '{"a":1}' }, { line: 2, tooLong: true }, { line: 3, text: '{"b":2}' }]);
  });
});
