// The endpoint registry on PGlite and PostgreSQL: keys sealed in their own cell, listings without keys, clear refusals.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EndpointRegistry } from '../../../connector/ingest/endpoint-registry.js';
import { OutreachError } from '../../../connector/errors.js';
import { FhirError } from '../../../fhir/outcome.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { testClientKey } from '../../fhir/support/smart-client.js';

describe.each(storeKinds)('endpoint registry on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  const cipher = createTestCipher();
  const key = testClientKey('ES384');
  const rsa = testClientKey('RS384');
  const input = { name: 'epic-prod', baseUrl: 'https://fhir.example.test/api/FHIR/R4', clientId: 'client-1', privateKey: key.privateKeyPem, kid: key.kid, scopes: ['system/Patient.rs', 'system/Observation.rs'] };

  beforeAll(async () => {
    store = await openTestStore(kind);
  });
  afterAll(async () => store.close());
  // Only this module's table changes between tests: emptying it is enough (a full reset migrates every module again).
  beforeEach(async () => void (await store.db.query('DELETE FROM fhir_endpoints')));

  it('stores an endpoint and gives back the full configuration with its key', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    const added = await registry.add(input);
    expect(added).toMatchObject({ name: 'epic-prod', baseUrl: 'https://fhir.example.test/api/FHIR/R4', auth: 'smart-backend', clientId: 'client-1', alg: 'ES384', kid: key.kid, scopes: ['system/Patient.rs', 'system/Observation.rs'], hasKey: true });
    const config = await registry.get('epic-prod');
    expect(config).toMatchObject({ name: 'epic-prod', clientId: 'client-1', alg: 'ES384', kid: key.kid, privateKey: key.privateKeyPem });
  });

  it('keeps a JWK key as a JWK', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    await registry.add({ ...input, name: 'jwk-ehr', privateKey: rsa.privateJwk as never, kid: undefined });
    const config = await registry.get('jwk-ehr');
    expect(config.privateKey).toMatchObject({ kty: 'RSA', kid: rsa.kid });
    expect(config).toMatchObject({ alg: 'RS384', kid: rsa.kid });
  });

  it('seals the private key: the column holds no key material and does not open in another row', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    await registry.add(input);
    await registry.add({ ...input, name: 'other' });
    const rows = await store.db.query<{ name: string; private_key: Uint8Array }>('SELECT name, private_key FROM fhir_endpoints ORDER BY name');
    const body = key.privateKeyPem.split('\n')[1]!;
    for (const r of rows) {
      const raw = Buffer.from(r.private_key).toString('latin1');
      expect(raw).not.toContain('PRIVATE KEY');
      expect(raw).not.toContain(body.slice(0, 24));
    }
    await store.db.query('UPDATE fhir_endpoints SET private_key = $1 WHERE name = $2', [rows[0]!.private_key, 'other']);
    await expect(registry.get('other')).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
    const registered = await store.db.query("SELECT 1 FROM sealed_columns WHERE table_name = 'fhir_endpoints' AND column_name = 'private_key'");
    expect(registered).toHaveLength(1);
  });

  it('lists endpoints without their keys', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    await registry.add(input);
    const list = await registry.list();
    expect(list).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain('PRIVATE');
    expect(list[0]).not.toHaveProperty('privateKey');
  });

  it('refuses a second endpoint with the same name', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    await registry.add(input);
    await expect(registry.add(input)).rejects.toMatchObject({ code: 'CONFLICT', message: 'FHIR endpoint epic-prod already exists' });
  });

  it('refuses an open endpoint unless open endpoints are allowed', async () => {
    const open = { name: 'test-server', baseUrl: 'http://127.0.0.1:9/fhir', auth: 'none' as const };
    await expect(new EndpointRegistry(store.db, cipher).add(open)).rejects.toBeInstanceOf(FhirError);
    const allowed = new EndpointRegistry(store.db, cipher, { allowOpen: true });
    expect(await allowed.add(open)).toMatchObject({ auth: 'none', hasKey: false });
    expect((await allowed.get('test-server')).privateKey).toBeUndefined();
  });

  it('removes an endpoint and says when one is unknown', async () => {
    const registry = new EndpointRegistry(store.db, cipher);
    await registry.add(input);
    await registry.remove('epic-prod');
    await expect(registry.get('epic-prod')).rejects.toBeInstanceOf(OutreachError);
    await expect(registry.remove('epic-prod')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
