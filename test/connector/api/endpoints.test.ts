// FHIR endpoints over HTTP: the admin adds an endpoint, the EHR trusts the connector's published key, the check and a background sync run end to end over TLS.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { startFhirTestServer, type FhirTestServer } from '../../fhir/support/fhir-test-server.js';
import { flattenForServer, syntheaBundles } from '../../fhir/support/synthea.js';
import { createTestCa } from '../../support/test-ca.js';
import { startApiWorld, type ApiWorld } from './api-world.js';

const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;

describe('FHIR endpoints over HTTP', () => {
  let world: ApiWorld;
  let ehr: FhirTestServer;
  let caDir: string;
  const call = (method: string, path: string, init: Parameters<ApiWorld['call']>[2] = {}) => world.call(method, `${apiPrefix}${path}`, init);
  const admin = (body?: unknown) => ({ token: world.tokens.admin, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    const ca = createTestCa();
    const leaf = ca.leaf(['127.0.0.1', 'localhost']);
    caDir = mkdtempSync(join(tmpdir(), 'outreach-api-ca-'));
    writeFileSync(join(caDir, 'ca.pem'), ca.cert);
    ehr = await startFhirTestServer({ resources: flattenForServer(syntheaBundles().slice(0, 3)), tls: { key: leaf.key, cert: leaf.cert } });
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } }, { OUTREACH_EXTRA_CA_FILE: join(caDir, 'ca.pem') });
  });
  afterAll(async () => {
    await world?.close();
    await ehr?.close();
    rmSync(caDir, { recursive: true, force: true });
  });

  it('adds an endpoint with a key made by the connector, publishes the public key, and refuses plain http', async () => {
    expect(ehr.url).toMatch(/^https:/);
    const insecure = await call('POST', '/endpoints', admin({ name: 'plain-ehr', baseUrl: ehr.url.replace('https:', 'http:'), clientId: 'outreach' }));
    expect(insecure.status).toBe(400);
    expect(insecure.json.issue[0].expression).toEqual(['baseUrl']);

    const created = await call('POST', '/endpoints', admin({ name: 'test-ehr', baseUrl: ehr.url, clientId: 'outreach', scopes: 'system/*.read' }));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: 'test-ehr', name: 'test-ehr', baseUrl: ehr.url, clientId: 'outreach', scopes: 'system/*.read', useBulkExport: false, lastSyncStatus: 'never', lastSyncAt: null });
    expect(created.json.keyId).toBeTypeOf('string');
    expect((await call('POST', '/endpoints', admin({ name: 'test-ehr', baseUrl: ehr.url, clientId: 'outreach' }))).status).toBe(409);

    const jwks = await world.call('GET', '/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.json.keys).toHaveLength(1);
    expect(jwks.json.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS384', use: 'sig', kid: created.json.keyId });
    expect(jwks.json.keys[0].d).toBeUndefined();
    // The EHR registers the connector's public key, as an EHR admin would from the JWKS URL.
    ehr.registerClient('outreach', jwks.json.keys[0], 'RS384');

    const stored = await world.app.db.query<{ private_key: Uint8Array }>('SELECT private_key FROM fhir_endpoints');
    expect(Buffer.from(stored[0]!.private_key).toString('latin1')).not.toContain('PRIVATE KEY');
  });

  it('checks the endpoint end to end, and reports a failure by its error code', async () => {
    const ok = await call('POST', '/endpoints/test-ehr/test', admin());
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ ok: true, tokenOk: true, fhirVersion: '4.0.1', error: null });
    expect(ehr.tokensIssued.length).toBeGreaterThan(0);

    await call('POST', '/endpoints', admin({ name: 'gone-ehr', baseUrl: 'https://127.0.0.1:9/fhir', clientId: 'outreach', tokenUrl: 'https://127.0.0.1:9/token' }));
    const down = await call('POST', '/endpoints/gone-ehr/test', admin());
    expect(down.status).toBe(200);
    expect(down.json.ok).toBe(false);
    expect(down.json.error).toMatch(/^FHIR_/);
    expect((await call('DELETE', '/endpoints/gone-ehr', admin())).status).toBe(204);
    expect((await call('POST', '/endpoints/gone-ehr/test', admin())).status).toBe(404);
  });

  it('starts a sync in the background, refuses a second one while it runs, and records the outcome', async () => {
    const started = await call('POST', '/endpoints/test-ehr/sync', admin());
    expect(started.status).toBe(202);
    expect(started.json.syncId).toMatch(/^test-ehr:/);
    const again = await call('POST', '/endpoints/test-ehr/sync', admin());
    if (again.status !== 202) expect(codeOf(again.json)).toBe('CONFLICT');
    let status = 'running';
    for (let i = 0; i < 2000 && status === 'running'; i++) {
      status = (await call('GET', '/endpoints', admin())).json.endpoints.find((e: any) => e.id === 'test-ehr').lastSyncStatus;
    }
    expect(status).toBe('ok');
    expect(await world.app.facts.count()).toBe(3);
    const audit = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'fhir.sync' })) audit.push(r);
    expect(audit.map((r) => [r.actor, r.entity])).toContainEqual(['admin', 'endpoint/test-ehr']);
  });

  it('replaces an endpoint keeping its key, and keeps its name', async () => {
    const before = (await world.call('GET', '/.well-known/jwks.json')).json.keys[0];
    const updated = await call('PUT', '/endpoints/test-ehr', admin({ name: 'test-ehr', baseUrl: ehr.url, clientId: 'outreach', scopes: 'system/Patient.read system/Observation.read', useBulkExport: true }));
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ scopes: 'system/Patient.read system/Observation.read', useBulkExport: true, lastSyncStatus: 'ok' });
    expect((await world.call('GET', '/.well-known/jwks.json')).json.keys[0]).toEqual(before);
    const renamed = await call('PUT', '/endpoints/test-ehr', admin({ name: 'other', baseUrl: ehr.url, clientId: 'outreach' }));
    expect(renamed.status).toBe(409);
    expect((await call('GET', '/endpoints', { token: world.tokens.marketer })).status).toBe(403);
  });
});
