// Reading an EHR's SMART configuration and keys: PKCE S256 and https endpoints required, failures named, keys cached and read again on rotation.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEhrFetch, EhrDiscovery } from '../../../connector/smart/ehr-discovery.js';
import { normaliseIss, practitionerOf } from '../../../connector/smart/ehr-registry.js';

describe('EHR discovery', () => {
  let server: Server;
  let base: string;
  const configs: Record<string, unknown> = {};
  let jwksReads = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/jwks') {
        jwksReads++;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [] }));
      }
      const m = /^\/([a-z-]+)\/\.well-known\/smart-configuration$/.exec(path);
      const body = m ? configs[m[1]!] : undefined;
      if (body === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const good = { authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks`, code_challenge_methods_supported: ['S256'] };
    configs.good = good;
    configs['no-pkce'] = { ...good, code_challenge_methods_supported: ['plain'] };
    configs['no-jwks'] = { ...good, jwks_uri: undefined };
    configs['plain-http'] = { ...good, token_endpoint: 'http://ehr.example/token' };
    configs['not-json'] = '<html>';
    configs['no-token'] = { ...good, token_endpoint: undefined };
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const discovery = () => new EhrDiscovery(createEhrFetch().fetch);

  it('reads a good configuration once and serves it from the cache', async () => {
    const d = discovery();
    const config = await d.configuration(`${base}/good`);
    expect(config.token_endpoint).toBe(`${base}/token`);
    configs.good = 'changed';
    expect((await d.configuration(`${base}/good`)).token_endpoint).toBe(`${base}/token`);
  });

  it.each([
    ['no-pkce', 'does not offer PKCE with S256'],
    ['no-jwks', 'names no jwks_uri'],
    ['plain-http', 'token_endpoint is not https'],
    ['not-json', 'is not JSON'],
    ['no-token', 'lacks token_endpoint'],
    ['missing', 'answered 404'],
  ])('refuses a configuration that %s', async (name, message) => {
    await expect(discovery().configuration(`${base}/${name}`)).rejects.toMatchObject({ code: 'SMART_DISCOVERY_FAILED', message: expect.stringContaining(message) });
  });

  it('reads the keys again only when asked to (an unknown key id)', async () => {
    const d = discovery();
    const before = jwksReads;
    await d.keySet(`${base}/jwks`);
    await d.keySet(`${base}/jwks`);
    expect(jwksReads - before).toBe(1);
    await d.keySet(`${base}/jwks`, true);
    expect(jwksReads - before).toBe(2);
  });

  it('normalises iss and reads Practitioner references from fhirUser', () => {
    expect(normaliseIss('https://ehr.example/fhir/r4/')).toBe('https://ehr.example/fhir/r4');
    expect(() => normaliseIss('http://ehr.example/fhir')).toThrow(/https/);
    expect(() => normaliseIss('https://user:pw@ehr.example/fhir')).toThrow(/credentials/);
    expect(normaliseIss('http://127.0.0.1:8080/fhir')).toBe('http://127.0.0.1:8080/fhir');
    const iss = 'https://ehr.example/fhir';
    expect(practitionerOf('Practitioner/abc-1', iss)).toBe('Practitioner/abc-1');
    expect(practitionerOf(`${iss}/Practitioner/abc-1`, iss)).toBe('Practitioner/abc-1');
    expect(practitionerOf(`${iss}/Practitioner/abc-1/_history/3`, iss)).toBe('Practitioner/abc-1');
    expect(practitionerOf('https://other.example/fhir/Practitioner/abc-1', iss)).toBeUndefined();
    expect(practitionerOf('Patient/p-1', iss)).toBeUndefined();
    expect(practitionerOf('RelatedPerson/r-1', iss)).toBeUndefined();
    expect(practitionerOf('Practitioner/../admin', iss)).toBeUndefined();
  });
});
