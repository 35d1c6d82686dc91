// A delivery test world on loopback: a test CA, a DNS server, SMTP sinks per scenario, an MTA-STS HTTPS host, and the product's router, probe and transport wired to them.
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createDnsLookup } from '../../../connector/delivery/dns-client.js';
import { createMtaSts } from '../../../connector/delivery/mta-sts.js';
import { createMxResolver, tableConnectTarget, type ConnectTarget } from '../../../connector/delivery/mx-resolver.js';
import { createDirectRouter, type Router } from '../../../connector/delivery/route.js';
import { createThreadedConnections } from '../../../connector/delivery/sending-threads.js';
import { createStarttlsProbe } from '../../../connector/delivery/starttls-probe.js';
import { createTransport, type Transport, type TransportOptions } from '../../../connector/delivery/transport.js';
import { createTestCa, type TestCa } from '../../support/test-ca.js';
import { startDnsServer, type TestDnsServer, type Zone } from '../../support/dns-server.js';
import { startSmtpSink, type SinkMode, type SmtpSink } from '../../support/smtp-sink.js';

export const scenarios = [
  'valid', 'no-starttls', 'self-signed', 'expired', 'wrong-hostname', 'starttls-broken', 'mta-sts-mismatch', 'dane-mismatch', 'mta-sts-ok', 'dane-ok',
] as const;
export type Scenario = (typeof scenarios)[number];

/** The recipient domain of a scenario, e.g. `valid.test`; its MX is `mx.<domain>`. */
export const domainOf = (s: Scenario) => `${s}.test`;

export interface DeliveryWorld {
  ca: TestCa;
  dns: TestDnsServer;
  sinks: Record<Scenario, SmtpSink>;
  router: Router;
  transport: Transport;
  connectTable: Record<string, ConnectTarget>;
  /** Every message every sink received, with the scenario. */
  received(): Array<{ scenario: Scenario; secure: boolean; raw: string }>;
  close(): Promise<void>;
}

/** `wire.threads` > 0 puts the transport's wire (DKIM, TLS, SMTP) on that many sending threads. */
export async function startDeliveryWorld(transportOptions: Partial<TransportOptions> = {}, only?: readonly Scenario[], wire: { threads?: number } = {}): Promise<DeliveryWorld> {
  const ca = createTestCa();
  const wanted = only ?? scenarios;
  const sinkSpec = (s: Scenario): { mode: SinkMode; cert?: ReturnType<TestCa['leaf']> } => {
    const mx = `mx.${domainOf(s)}`;
    switch (s) {
      case 'no-starttls': return { mode: 'no-starttls' };
      case 'self-signed': return { mode: 'starttls', cert: ca.selfSigned([mx]) };
      case 'expired': return { mode: 'starttls', cert: ca.expired([mx]) };
      case 'wrong-hostname': return { mode: 'starttls', cert: ca.leaf(['mx.somebody-else.test']) };
      case 'starttls-broken': return { mode: 'starttls-broken', cert: ca.leaf([mx]) };
      default: return { mode: 'starttls', cert: ca.leaf([mx]) };
    }
  };
  const sinks = {} as Record<Scenario, SmtpSink>;
  const connectTable: Record<string, ConnectTarget> = {};
  for (const s of wanted) {
    const spec = sinkSpec(s);
    sinks[s] = await startSmtpSink({ mode: spec.mode, ...(spec.cert ? { key: spec.cert.key, cert: spec.cert.cert } : {}), name: `mx.${domainOf(s)}` });
    connectTable[`smtp:mx.${domainOf(s)}`] = { host: '127.0.0.1', port: sinks[s].port };
  }

  // MTA-STS policy host for the two MTA-STS scenarios, served over HTTPS with a certificate from the test CA.
  const policyCert = ca.leaf(['mta-sts.mta-sts-mismatch.test', 'mta-sts.mta-sts-ok.test']);
  const policies: Record<string, string> = {
    'mta-sts.mta-sts-mismatch.test': 'version: STSv1\nmode: enforce\nmx: mx.somewhere-else.test\nmax_age: 86400\n',
    'mta-sts.mta-sts-ok.test': 'version: STSv1\nmode: enforce\nmx: *.mta-sts-ok.test\nmax_age: 86400\n',
  };
  const policyServer = https.createServer({ key: policyCert.key, cert: policyCert.cert }, (req, res) => {
    const body = policies[(req.headers.host ?? '').split(':')[0]!];
    if (req.url !== '/.well-known/mta-sts.txt' || !body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => policyServer.listen(0, '127.0.0.1', resolve));
  const policyPort = (policyServer.address() as AddressInfo).port;
  for (const host of Object.keys(policies)) connectTable[`https:${host}`] = { host: '127.0.0.1', port: policyPort };

  const zones: Record<string, Zone> = {};
  for (const s of wanted) zones[domainOf(s)] = { MX: [{ exchange: `mx.${domainOf(s)}`, priority: 10 }] };
  if (zones['mta-sts-mismatch.test']) zones['_mta-sts.mta-sts-mismatch.test'] = { TXT: ['v=STSv1; id=20260101T000000'] };
  if (zones['mta-sts-ok.test']) zones['_mta-sts.mta-sts-ok.test'] = { TXT: ['v=STSv1; id=20260101T000000'] };
  const leafSpki = ca.leaf(['x.test']).spki;
  zones['_25._tcp.mx.dane-mismatch.test'] = { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: createHash('sha256').update('not this key').digest() }] };
  zones['_25._tcp.mx.dane-ok.test'] = { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: createHash('sha256').update(leafSpki).digest() }] };
  const dns = await startDnsServer(zones);

  const lookup = createDnsLookup([dns.address]);
  const connectTarget = tableConnectTarget(connectTable);
  const router = createDirectRouter({
    dns: lookup,
    mxResolver: createMxResolver(lookup),
    mtaSts: createMtaSts({ dns: lookup, connectTarget, ca: [ca.cert] }),
    probe: createStarttlsProbe({ heloName: 'sender.outreach.test', ca: [ca.cert], timeoutMs: 5000 }),
    connectTarget,
  });
  const wireOptions = { heloName: 'sender.outreach.test', ca: [ca.cert], timeoutMs: 5000 };
  const transport = createTransport({
    ...wireOptions,
    ...(wire.threads ? { connections: createThreadedConnections({ ...wireOptions, threads: wire.threads }) } : {}),
    ...transportOptions,
  });
  return {
    ca, dns, sinks, router, transport, connectTable,
    received: () =>
      (Object.entries(sinks) as Array<[Scenario, SmtpSink]>).flatMap(([scenario, sink]) =>
        sink.messages.map((m) => ({ scenario, secure: m.secure, raw: m.raw.toString('utf8') })),
      ),
    close: async () => {
      await transport.close();
      await Promise.all(Object.values(sinks).map((s) => s.close()));
      await new Promise<void>((resolve) => policyServer.close(() => resolve()));
      await dns.close();
    },
  };
}

/** Empties the delivery tables (much cheaper than re-migrating a whole schema between tests). */
export async function clearDelivery(db: import('../../../connector/store/db.js').Db): Promise<void> {
  await db.exec('TRUNCATE delivery_outbox, delivery_attempts, delivery_suppressions, delivery_feedback, webhook_deliveries RESTART IDENTITY CASCADE');
}
