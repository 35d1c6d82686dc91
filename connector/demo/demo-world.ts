// The demo's surroundings on 127.0.0.1: the demo CA (its PEM written for OUTREACH_EXTRA_CA_FILE), the demo EHR over HTTPS, two receiving mail domains and the DNS that names them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FhirResource } from 'fhir/r4.js';
import type { ConnectTarget } from '../delivery/mx-resolver.js';
import { createTestCa, type TestCa } from './demo-ca.js';
import { startDnsServer, type TestDnsServer } from './demo-dns.js';
import { startFhirTestServer, type FhirTestServer } from './demo-ehr.js';
import { startSmtpSink, type SmtpSink } from './mail-sink.js';

/** The receiving mail domains: one offers STARTTLS with a demo-CA certificate, one offers no TLS. */
export const demoMailDomains = { tls: 'tls.example.test', plain: 'plain.example.test' } as const;
/** The practice's sending domain (its DKIM key is published in the demo DNS). */
export const demoSenderDomain = 'clinic.example.test';

export interface DemoMailbox {
  domain: string;
  mx: string;
  tls: boolean;
  sink: SmtpSink;
}

export interface DemoWorld {
  ca: TestCa;
  /** The demo CA's PEM, the connector's extra trust (config.extraCaFile). */
  caFile: string;
  ehr: FhirTestServer;
  dns: TestDnsServer;
  mailboxes: DemoMailbox[];
  /** Where the connector connects for the MX names (`smtp:<mx>` → loopback port): port 25 needs no root. */
  connectTable: Record<string, ConnectTarget>;
  /** Publishes a TXT record (the sender's DKIM key). */
  publishTxt(name: string, value: string): void;
  close(): Promise<void>;
}

export async function startDemoWorld(options: { resources: FhirResource[]; caFile: string }): Promise<DemoWorld> {
  const ca = createTestCa('Secure Outreach Demo CA');
  mkdirSync(dirname(options.caFile), { recursive: true });
  writeFileSync(options.caFile, ca.cert, { mode: 0o644 });
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const ehrCert = ca.leaf(['127.0.0.1', 'localhost']);
    const ehr = await startFhirTestServer({
      resources: options.resources as never,
      tls: { key: ehrCert.key, cert: ehrCert.cert },
      defaultPageSize: 500,
    });
    started.push(ehr);
    const mailboxes: DemoMailbox[] = [];
    for (const [kind, domain] of Object.entries(demoMailDomains) as Array<['tls' | 'plain', string]>) {
      const mx = `mx.${domain}`;
      const cert = kind === 'tls' ? ca.leaf([mx]) : undefined;
      const sink = await startSmtpSink({ mode: cert ? 'starttls' : 'no-starttls', name: mx, ...(cert ? { key: cert.key, cert: cert.cert } : {}) });
      started.push(sink);
      mailboxes.push({ domain, mx, tls: kind === 'tls', sink });
    }
    const zones: Parameters<typeof startDnsServer>[0] = {};
    for (const m of mailboxes) {
      zones[m.domain] = { MX: [{ exchange: m.mx, priority: 10 }] };
      zones[m.mx] = { A: ['127.0.0.1'] };
    }
    const dns = await startDnsServer(zones);
    started.push(dns);
    const connectTable = Object.fromEntries(mailboxes.map((m) => [`smtp:${m.mx}`, { host: '127.0.0.1', port: m.sink.port }]));
    return {
      ca,
      caFile: options.caFile,
      ehr,
      dns,
      mailboxes,
      connectTable,
      publishTxt: (name, value) => void dns.zones.set(name.toLowerCase(), { ...(dns.zones.get(name.toLowerCase()) ?? {}), TXT: [value] }),
      close: async () => {
        await Promise.all(started.map((s) => s.close()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close().catch(() => undefined)));
    throw err;
  }
}
