// SMART Backend Services: endpoint validation, token URL discovery, verified client assertions, token caching and refresh.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { discoverSmartConfiguration, parseEndpointConfig, publicJwks, signClientAssertion, SmartBackendTokens } from '../../fhir/endpoint.js';
import { FhirError } from '../../fhir/outcome.js';
import { startFhirTestServer, type FhirTestServer } from './support/fhir-test-server.js';
import { registeredEndpoint, testClientKey } from './support/smart-client.js';

let server: FhirTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const catchError = async (p: Promise<unknown>): Promise<FhirError> => {
  try {
    await p;
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected a FhirError');
};

describe('endpoint configuration', () => {
  const key = testClientKey('ES384');
  const base = { name: 'ehr', baseUrl: 'https://ehr.example.test/fhir/', clientId: 'c1', privateKey: key.privateKeyPem };

  it('accepts SMART v1 and v2 system scopes and takes the algorithm from the key', () => {
    const v1 = parseEndpointConfig({ ...base, scopes: ['system/*.read'] });
    const v2 = parseEndpointConfig({ ...base, scopes: ['system/Patient.rs', 'system/Observation.rs?category=laboratory'] });
    expect(v1.alg).toBe('ES384');
    expect(v1.baseUrl).toBe('https://ehr.example.test/fhir');
    expect(v2.scopes).toEqual(['system/Patient.rs', 'system/Observation.rs?category=laboratory']);
    const rsa = testClientKey('RS384');
    expect(parseEndpointConfig({ ...base, privateKey: rsa.privateJwk }).alg).toBe('RS384');
    expect(parseEndpointConfig({ ...base, privateKey: rsa.privateJwk }).kid).toBe(rsa.kid);
  });

  it('refuses a scope that is not SMART, naming the field', () => {
    const err = (() => {
      try {
        parseEndpointConfig({ ...base, scopes: ['everything'] });
      } catch (e) {
        return e as FhirError;
      }
    })();
    expect(err?.code).toBe('FHIR_ENDPOINT_CONFIG');
    expect(err?.message).toContain('scopes.0');
  });

  it('refuses a key that does not fit the algorithm without quoting the key', () => {
    const rsa = testClientKey('RS384');
    let err: FhirError | undefined;
    try {
      parseEndpointConfig({ ...base, privateKey: rsa.privateKeyPem, alg: 'ES384' });
    } catch (e) {
      err = e as FhirError;
    }
    expect(err?.code).toBe('FHIR_ENDPOINT_CONFIG');
    expect(err?.message).not.toContain('PRIVATE KEY');
    expect(() => parseEndpointConfig({ ...base, privateKey: 'not a key' })).toThrow(/privateKey cannot be read/);
  });

  it('allows an open endpoint only when the caller says so', () => {
    expect(() => parseEndpointConfig({ name: 'open', baseUrl: 'http://127.0.0.1:1/fhir', auth: 'none' })).toThrow(/OUTREACH_OPEN_FHIR_ENDPOINTS/);
    expect(parseEndpointConfig({ name: 'open', baseUrl: 'http://127.0.0.1:1/fhir', auth: 'none' }, { allowOpen: true }).auth).toBe('none');
  });

  it('publishes the public half of the key as a JWKS', () => {
    const jwks = publicJwks(parseEndpointConfig({ ...base, kid: 'k1' }));
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig', kid: 'k1' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });
});

describe('SMART backend tokens', () => {
  it('discovers the token URL from .well-known/smart-configuration', async () => {
    server = await startFhirTestServer();
    const endpoint = registeredEndpoint(server);
    expect(await discoverSmartConfiguration(endpoint)).toEqual({ tokenEndpoint: server.tokenUrl, discoveredFrom: '.well-known/smart-configuration' });
  });

  it('falls back to the CapabilityStatement oauth-uris extension', async () => {
    server = await startFhirTestServer({ discovery: 'capability' });
    const endpoint = registeredEndpoint(server);
    expect(await discoverSmartConfiguration(endpoint)).toEqual({ tokenEndpoint: server.tokenUrl, discoveredFrom: 'CapabilityStatement' });
    expect(await new SmartBackendTokens(endpoint).token()).toBe(server.tokensIssued[0]);
  });

  it('fails discovery clearly when neither document names a token URL', async () => {
    server = await startFhirTestServer({ discovery: 'none' });
    const err = await catchError(discoverSmartConfiguration(registeredEndpoint(server)));
    expect(err.code).toBe('FHIR_DISCOVERY_FAILED');
    expect(err.message).toContain('"test-ehr"');
  });

  it('signs an assertion with aud = token URL, exp within 5 minutes, a unique jti and the kid', async () => {
    server = await startFhirTestServer();
    const endpoint = registeredEndpoint(server);
    const a = await signClientAssertion(endpoint, server.tokenUrl, { lifetimeSeconds: 3600 });
    const b = await signClientAssertion(endpoint, server.tokenUrl);
    const claims = decodeJwt(a);
    expect(claims).toMatchObject({ iss: endpoint.clientId, sub: endpoint.clientId, aud: server.tokenUrl });
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(decodeProtectedHeader(a)).toMatchObject({ alg: 'ES384', kid: endpoint.kid, typ: 'JWT' });
    expect(claims.jti).not.toBe(decodeJwt(b).jti);
  });

  it('gets a token the server verified, with RS384 and ES384 keys alike', async () => {
    server = await startFhirTestServer();
    for (const alg of ['RS384', 'ES384'] as const) {
      const token = await new SmartBackendTokens(registeredEndpoint(server, {}, alg)).token();
      expect(server.tokensIssued).toContain(token);
    }
    expect(server.rejectedAssertions).toEqual([]);
  });

  it('refuses a replayed assertion (jti reuse) at the token endpoint', async () => {
    server = await startFhirTestServer();
    const endpoint = registeredEndpoint(server);
    const assertion = await signClientAssertion(endpoint, server.tokenUrl);
    const post = () =>
      fetch(server!.tokenUrl, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.read', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      });
    expect((await post()).status).toBe(200);
    expect((await post()).status).toBe(401);
    expect(server.rejectedAssertions).toEqual(['jti reused']);
  });

  it('refuses an assertion for another audience', async () => {
    server = await startFhirTestServer();
    const endpoint = registeredEndpoint(server, { tokenUrl: `${new URL(server.tokenUrl).origin}/auth/token?x=1` });
    const err = await catchError(new SmartBackendTokens(endpoint).token());
    expect(err.code).toBe('FHIR_TOKEN_REJECTED');
    expect(server.rejectedAssertions[0]).toMatch(/verification/);
  });

  it('says the token was rejected when the key is not the registered one', async () => {
    server = await startFhirTestServer();
    const endpoint = registeredEndpoint(server);
    const impostor = parseEndpointConfig({ ...endpoint, privateKey: testClientKey('ES384').privateKeyPem });
    const err = await catchError(new SmartBackendTokens(impostor).token());
    expect(err.code).toBe('FHIR_TOKEN_REJECTED');
    expect(err.message).toBe('endpoint "test-ehr": the token endpoint rejected the client assertion (HTTP 401, invalid_client)');
  });

  it('caches the token and shares one request between concurrent callers', async () => {
    server = await startFhirTestServer();
    const tokens = new SmartBackendTokens(registeredEndpoint(server));
    const all = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);
    expect(new Set(all).size).toBe(1);
    expect(await tokens.token()).toBe(all[0]);
    expect(server.tokensIssued).toHaveLength(1);
  });

  it('refreshes the token before it expires', async () => {
    server = await startFhirTestServer({ tokenLifetimeSeconds: 300 });
    let clock = Date.now();
    const tokens = new SmartBackendTokens(registeredEndpoint(server), { now: () => clock });
    const first = await tokens.token();
    clock += 200_000;
    expect(await tokens.token()).toBe(first);
    clock += 45_000; // 55 s before expiry: inside the 60 s margin
    const second = await tokens.token();
    expect(second).not.toBe(first);
    expect(server.tokensIssued).toEqual([first, second]);
  });
});
