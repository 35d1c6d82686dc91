// The FHIR client against a live loopback server: paging to the end, incremental search, retries, token refresh, failures by name.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FhirClient } from '../../fhir/client.js';
import { parseEndpointConfig } from '../../fhir/endpoint.js';
import { FhirError } from '../../fhir/outcome.js';
import { startFhirTestServer, type FhirTestServer } from './support/fhir-test-server.js';
import { registeredEndpoint } from './support/smart-client.js';

let server: FhirTestServer | undefined;
const extra: Server[] = [];
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const s of extra.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const patients = (n: number, lastUpdated = (i: number) => `2024-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00Z`) =>
  Array.from({ length: n }, (_, i) => ({ resourceType: 'Patient', id: `p${i}`, meta: { lastUpdated: lastUpdated(i) }, gender: 'female' }));

async function catchError(p: Promise<unknown> | (() => Promise<unknown>)): Promise<FhirError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected a FhirError');
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('FhirClient', () => {
  it('follows next links to the last page with the _count asked', async () => {
    server = await startFhirTestServer({ resources: patients(23) });
    const client = new FhirClient(registeredEndpoint(server), { pageSize: 5 });
    const pages = await all(client.searchPages('Patient'));
    expect(pages).toHaveLength(5);
    expect(pages.flatMap((p) => p.entry!.map((e) => e.resource!.id))).toEqual(Array.from({ length: 23 }, (_, i) => `p${i}`));
    expect(server.requests.filter((r) => r.path === '/fhir/Patient').every((r) => r.query._count === '5' && r.authorized)).toBe(true);
  });

  it('searches incrementally with _lastUpdated', async () => {
    server = await startFhirTestServer({ resources: patients(10, (i) => (i < 7 ? '2023-06-01T00:00:00Z' : '2024-06-01T00:00:00Z')) });
    const client = new FhirClient(registeredEndpoint(server));
    const found = await all(client.search('Patient', { _lastUpdated: 'gt2024-01-01T00:00:00Z' }));
    expect(found.map((r) => r.id)).toEqual(['p7', 'p8', 'p9']);
  });

  it('retries a 429 after the Retry-After the server asked for, then succeeds', async () => {
    server = await startFhirTestServer({ resources: patients(3) });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 429, retryAfter: '0', times: 2 });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 503, retryAfter: '0', times: 1 });
    const found = await all(new FhirClient(registeredEndpoint(server)).search('Patient'));
    expect(found).toHaveLength(3);
    expect(server.requests.filter((r) => r.path === '/fhir/Patient')).toHaveLength(4);
  });

  it('gives up after the retry limit and says what the server answered', async () => {
    server = await startFhirTestServer({ resources: patients(3) });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 429, retryAfter: '0', times: 10 });
    const err = await catchError(all(new FhirClient(registeredEndpoint(server), { maxRetries: 2 }).search('Patient')));
    expect(err.code).toBe('FHIR_HTTP_ERROR');
    expect(err.message).toBe('endpoint "test-ehr" answered HTTP 429 (throttled) to the search of Patient');
  });

  it('refuses a Retry-After longer than the limit instead of hanging', async () => {
    server = await startFhirTestServer({ resources: patients(1) });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 503, retryAfter: '3600' });
    const err = await catchError(all(new FhirClient(registeredEndpoint(server), { maxRetryWaitMs: 1000 }).search('Patient')));
    expect(err.message).toContain('after 3600 s, beyond the 1 s limit');
  });

  it('refreshes the token once on 401 and carries on', async () => {
    server = await startFhirTestServer({ resources: patients(4) });
    const client = new FhirClient(registeredEndpoint(server), { pageSize: 2 });
    const pages = client.searchPages('Patient');
    await pages.next();
    server.revokeTokens();
    const rest = await all({ [Symbol.asyncIterator]: () => pages });
    expect(rest).toHaveLength(1);
    expect(server.tokensIssued).toHaveLength(2);
  });

  it('says the token was rejected when a fresh token is refused too', async () => {
    server = await startFhirTestServer({ resources: patients(1) });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 401, times: 2 });
    const err = await catchError(all(new FhirClient(registeredEndpoint(server)).search('Patient')));
    expect(err.code).toBe('FHIR_TOKEN_REJECTED');
    expect(err.message).toBe('endpoint "test-ehr" refused a freshly issued access token (HTTP 401) on the search of Patient');
    expect(server.tokensIssued).toHaveLength(2);
  });

  it('names the endpoint and the cause when it is unreachable', async () => {
    const closed = await startFhirTestServer();
    const url = closed.url;
    await closed.close();
    const endpoint = parseEndpointConfig({ name: 'gone-ehr', baseUrl: url, auth: 'none' }, { allowOpen: true });
    const err = await catchError(all(new FhirClient(endpoint).search('Patient')));
    expect(err.code).toBe('FHIR_ENDPOINT_UNREACHABLE');
    expect(err.message).toBe(`FHIR endpoint "gone-ehr" (${new URL(url).host}) is unreachable during the search of Patient: ECONNREFUSED`);
  });

  it('names the endpoint when discovery cannot reach it', async () => {
    const closed = await startFhirTestServer();
    const endpoint = registeredEndpoint(closed, { name: 'gone-smart' });
    await closed.close();
    const err = await catchError(all(new FhirClient(endpoint).search('Patient')));
    expect(err.code).toBe('FHIR_ENDPOINT_UNREACHABLE');
    expect(err.message).toMatch(/^FHIR endpoint "gone-smart" \(127\.0\.0\.1:\d+\) is unreachable during the SMART discovery: ECONNREFUSED$/);
  });

  it('times out a server that never answers', async () => {
    const silent = createServer(() => undefined);
    extra.push(silent);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const endpoint = parseEndpointConfig({ name: 'slow-ehr', baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/fhir`, auth: 'none' }, { allowOpen: true });
    const err = await catchError(all(new FhirClient(endpoint, { timeoutMs: 200 }).search('Patient')));
    expect(err.code).toBe('FHIR_TIMEOUT');
    expect(err.message).toContain('"slow-ehr"');
    expect(err.message).toContain('within 0.2 s');
  });

  it('never sends the token to a next link on another host', async () => {
    const evil = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      const port = (evil.address() as AddressInfo).port;
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'next', url: `http://localhost:${port}/steal` }], entry: [] }));
    });
    extra.push(evil);
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const endpoint = parseEndpointConfig({ name: 'odd-ehr', baseUrl: `http://127.0.0.1:${(evil.address() as AddressInfo).port}/fhir`, auth: 'none' }, { allowOpen: true });
    const err = await catchError(all(new FhirClient(endpoint).search('Patient')));
    expect(err.message).toContain('pointed the search of Patient at another host');
  });

  it('keeps server diagnostics out of its errors', async () => {
    server = await startFhirTestServer({ resources: patients(1) });
    server.fail({ match: /^GET \/fhir\/Patient$/, status: 422, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics: 'Patient Fannie Waelchi born 2020-04-28 is invalid' }] } });
    const err = await catchError(all(new FhirClient(registeredEndpoint(server)).search('Patient')));
    expect(err.message).toBe('endpoint "test-ehr" answered HTTP 422 (processing) to the search of Patient');
    expect(JSON.stringify({ ...err, message: err.message })).not.toMatch(/Fannie|2020-04-28/);
  });
});

describe('fhir-kit-client debug output', () => {
  it('is switched off even when DEBUG asks for it, so tokens and bodies never reach stderr', async () => {
    const { createRequire } = await import('node:module');
    const debug = createRequire(import.meta.url)('debug') as ((ns: string) => { enabled: boolean }) & { enable(ns: string): void; disable(): string; enabled(ns: string): boolean };
    const kitLogger = debug('fhir-kit-client:info');
    debug.enable('fhir-kit-client:*,outreach-probe');
    try {
      new FhirClient(parseEndpointConfig({ name: 'x', baseUrl: 'http://127.0.0.1:9/fhir', auth: 'none' }, { allowOpen: true }));
      expect(debug.enabled('fhir-kit-client:info')).toBe(false);
      expect(debug.enabled('fhir-kit-client:error')).toBe(false);
      expect(kitLogger.enabled).toBe(false);
      expect(debug.enabled('outreach-probe')).toBe(true);
    } finally {
      debug.disable();
    }
  });
});
