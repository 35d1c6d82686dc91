// A registered SMART backend client for tests: a fresh key pair, its public JWK on the test server, and the endpoint config.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import { parseEndpointConfig, type EndpointConfig } from '../../../fhir/endpoint.js';
import type { FhirTestServer } from './fhir-test-server.js';

export interface TestClientKey {
  privateKeyPem: string;
  privateJwk: JWK;
  publicJwk: JWK;
  kid: string;
  alg: 'RS384' | 'ES384';
}

export function testClientKey(alg: 'RS384' | 'ES384' = 'ES384'): TestClientKey {
  const pair = alg === 'RS384' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const kid = randomUUID();
  return {
    privateKeyPem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    privateJwk: { ...(pair.privateKey.export({ format: 'jwk' }) as JWK), kid },
    publicJwk: { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid },
    kid,
    alg,
  };
}

/** Registers a new client at the server and returns its endpoint configuration. */
export function registeredEndpoint(server: FhirTestServer, overrides: Record<string, unknown> = {}, alg: 'RS384' | 'ES384' = 'ES384'): EndpointConfig {
  const key = testClientKey(alg);
  const clientId = `client-${randomUUID().slice(0, 8)}`;
  server.registerClient(clientId, key.publicJwk, alg);
  return parseEndpointConfig({ name: 'test-ehr', baseUrl: server.url, clientId, privateKey: key.privateKeyPem, kid: key.kid, scopes: ['system/*.read'], ...overrides });
}
