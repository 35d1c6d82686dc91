// MX resolution, MTA-STS parsing/matching/caching, DANE matching and the policy decision, against the loopback DNS server and real certificates.
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchTlsa } from '../../../connector/delivery/dane.js';
import { createDnsLookup } from '../../../connector/delivery/dns-client.js';
import { createMtaSts, mxMatches, parseStsPolicy, parseStsTxt } from '../../../connector/delivery/mta-sts.js';
import { createMxResolver, tableConnectTarget } from '../../../connector/delivery/mx-resolver.js';
import type { RouteAssessment, RouteCandidate } from '../../../connector/delivery/route.js';
import { decideDelivery } from '../../../connector/delivery/tls-policy.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { createTestCa, type TestCa } from '../../support/test-ca.js';

let dns: TestDnsServer;
let ca: TestCa;
beforeAll(async () => {
  ca = createTestCa();
  dns = await startDnsServer({
    'multi.test': { MX: [{ exchange: 'mx2.multi.test', priority: 20 }, { exchange: 'mx1.multi.test', priority: 10 }, { exchange: 'mx3.multi.test', priority: 30 }] },
    'bare.test': { A: ['127.0.0.1'] },
    'nullmx.test': { MX: [{ exchange: '', priority: 0 }] },
    '_mta-sts.sts.test': { TXT: ['v=STSv1; id=one'] },
    '_mta-sts.untrusted.test': { TXT: ['v=STSv1; id=x1'] },
  });
});
afterAll(async () => dns.close());

describe('MX resolution', () => {
  it('orders MX hosts by preference', async () => {
    const r = createMxResolver(createDnsLookup([dns.address]));
    expect((await r.resolve('multi.test')).map((m) => m.host)).toEqual(['mx1.multi.test', 'mx2.multi.test', 'mx3.multi.test']);
  });
  it('falls back to the domain itself when it has an address but no MX', async () => {
    const r = createMxResolver(createDnsLookup([dns.address]));
    expect(await r.resolve('bare.test')).toEqual([{ host: 'bare.test', priority: 0, implicit: true }]);
  });
  it('fails with MX_NOT_FOUND for a null MX and for a domain with nothing', async () => {
    const r = createMxResolver(createDnsLookup([dns.address]));
    await expect(r.resolve('nullmx.test')).rejects.toMatchObject({ code: 'MX_NOT_FOUND' });
    await expect(r.resolve('nothing.test')).rejects.toMatchObject({ code: 'MX_NOT_FOUND' });
  });
});

describe('MTA-STS', () => {
  it('parses the TXT record and the policy, and matches MX patterns one label deep', () => {
    expect(parseStsTxt('v=STSv1; id=20260101T00')).toEqual({ id: '20260101T00' });
    expect(parseStsTxt('v=STSv2; id=1')).toBeUndefined();
    const p = parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n', 'a', 0)!;
    expect(p).toMatchObject({ mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAgeSeconds: 604800 });
    expect(mxMatches(p, 'mail.example.com')).toBe(true);
    expect(mxMatches(p, 'mx1.example.net')).toBe(true);
    expect(mxMatches(p, 'a.b.example.net')).toBe(false);
    expect(mxMatches(p, 'example.net')).toBe(false);
    expect(parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 1\n', 'a', 0)).toBeUndefined();
  });

  it('fetches over verified HTTPS, caches by id until max_age, and refetches when the id changes', async () => {
    const cert = ca.leaf(['mta-sts.sts.test']);
    let served = 0;
    let body = 'version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 100\n';
    const server = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    let now = 1_000_000;
    const port = (server.address() as AddressInfo).port;
    const sts = createMtaSts({
      dns: createDnsLookup([dns.address]),
      connectTarget: tableConnectTarget({ 'https:mta-sts.sts.test': { host: '127.0.0.1', port } }),
      ca: [ca.cert],
      now: () => now,
    });
    try {
      expect(await sts.lookup('sts.test')).toMatchObject({ status: 'policy', fromCache: false, policy: { id: 'one', mode: 'enforce', mx: ['mx.sts.test'] } });
      expect(await sts.lookup('sts.test')).toMatchObject({ status: 'policy', fromCache: true });
      expect(served).toBe(1);
      // A new id means a new policy.
      body = 'version: STSv1\nmode: testing\nmx: mx.sts.test\nmax_age: 100\n';
      dns.zones.set('_mta-sts.sts.test', { TXT: ['v=STSv1; id=two'] });
      expect(await sts.lookup('sts.test')).toMatchObject({ status: 'policy', fromCache: false, policy: { id: 'two', mode: 'testing' } });
      // The TXT record disappears: the cached policy still holds until max_age, then there is none.
      dns.zones.delete('_mta-sts.sts.test');
      expect(await sts.lookup('sts.test')).toMatchObject({ status: 'policy', fromCache: true });
      now += 101_000;
      expect(await sts.lookup('sts.test')).toEqual({ status: 'none' });
      expect(served).toBe(2);
    } finally {
      server.close();
    }
  });

  it('treats a policy host whose certificate is not trusted as a failed fetch, not as a policy', async () => {
    const cert = ca.selfSigned(['mta-sts.untrusted.test']);
    const server = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: none\nmax_age: 1\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sts = createMtaSts({
      dns: createDnsLookup([dns.address]),
      connectTarget: tableConnectTarget({ 'https:mta-sts.untrusted.test': { host: '127.0.0.1', port: (server.address() as AddressInfo).port } }),
      ca: [ca.cert],
    });
    try {
      expect(await sts.lookup('untrusted.test')).toMatchObject({ status: 'fetch-failed' });
    } finally {
      server.close();
    }
  });
});

describe('DANE matching', () => {
  const peerOf = async (leaf: ReturnType<TestCa['leaf']>) => {
    const server = tls.createServer({ key: leaf.key, cert: `${leaf.cert}${ca.cert}` }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'mx.dane.test', ca: [ca.cert] });
    await new Promise((r) => socket.once('secureConnect', r));
    const peer = socket.getPeerCertificate(true);
    socket.destroy();
    server.close();
    return peer;
  };

  it('matches DANE-EE by SPKI SHA-256 and by full certificate SHA-512, and DANE-TA by the issuing CA', async () => {
    const leaf = ca.leaf(['mx.dane.test']);
    const peer = await peerOf(leaf);
    const sha = (alg: string, b: Buffer) => createHash(alg).update(b).digest();
    expect(matchTlsa([{ usage: 3, selector: 1, matchingType: 1, data: sha('sha256', leaf.spki) }], peer)).toMatchObject({ status: 'matched', usage: 3 });
    expect(matchTlsa([{ usage: 3, selector: 0, matchingType: 2, data: sha('sha512', leaf.der) }], peer)).toMatchObject({ status: 'matched', usage: 3 });
    expect(matchTlsa([{ usage: 2, selector: 1, matchingType: 1, data: sha('sha256', ca.spki) }], peer)).toMatchObject({ status: 'matched', usage: 2 });
    // The CA's key as DANE-EE is a mismatch: EE records name the leaf.
    expect(matchTlsa([{ usage: 3, selector: 1, matchingType: 1, data: sha('sha256', ca.spki) }], peer)).toMatchObject({ status: 'mismatch' });
    // PKIX-TA/EE usages are unusable for SMTP (RFC 7672 §3.1.3).
    expect(matchTlsa([{ usage: 1, selector: 1, matchingType: 1, data: sha('sha256', leaf.spki) }], peer)).toEqual({ status: 'unusable', records: 1 });
    expect(matchTlsa([], peer)).toEqual({ status: 'none' });
  });
});

describe('delivery decision', () => {
  const cand = (over: Partial<RouteCandidate> = {}): RouteCandidate => ({
    mx: 'mx.a.test', target: { host: '127.0.0.1', port: 25 }, tlsa: [], mtaSts: { status: 'none' }, dane: { status: 'none' }, verified: false, requiresTls: false, ...over,
  });
  const route = (over: Partial<RouteAssessment>): RouteAssessment => ({ domain: 'a.test', candidates: [], reasons: ['mx.a.test: no-starttls'], ...over });
  const verified = route({ verified: cand({ verified: true }), reasons: [] });
  const plain = route({ opportunistic: cand() });
  const locked = route({});

  it.each([
    ['tls-required', false, verified, 'deliver:verified'],
    ['tls-required', true, plain, 'hold'],
    ['tls-or-escrow', false, verified, 'deliver:verified'],
    ['tls-or-escrow', false, plain, 'notice:opportunistic'],
    ['tls-or-escrow', true, plain, 'deliver:opportunistic'],
    ['tls-or-escrow', true, locked, 'hold'],
    ['escrow', false, verified, 'notice:verified'],
    ['escrow', true, plain, 'notice:opportunistic'],
    ['escrow', false, locked, 'hold'],
  ] as const)('%s, PHI-free %s → %#', (mode, phiFree, r, want) => {
    const d = decideDelivery({ mode, phiFree, route: r });
    expect(d.action === 'hold' ? 'hold' : `${d.action}:${d.tls}`).toBe(want);
  });
});
