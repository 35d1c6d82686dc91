// DNS look-ups for delivery (MX, A, TXT, TLSA) over dns2 against configured servers (host:port), or the system resolver.
import { Resolver } from 'node:dns/promises';
import dns2 from 'dns2';

/** RFC 6698 TLSA resource record type; dns2 does not name it, so it is registered and its RDATA read raw. */
export const TLSA_TYPE = 52;
(dns2.Packet.TYPE as Record<string, number>).TLSA ??= TLSA_TYPE;

export interface MxRecord {
  exchange: string;
  priority: number;
}

export interface TlsaRecord {
  /** 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE. */
  usage: number;
  /** 0 full certificate, 1 SubjectPublicKeyInfo. */
  selector: number;
  /** 0 exact, 1 SHA-256, 2 SHA-512. */
  matchingType: number;
  data: Buffer;
}

/** What delivery asks of DNS. An empty array means "no such record" (NXDOMAIN or NODATA). */
export interface DnsLookup {
  mx(domain: string): Promise<MxRecord[]>;
  a(host: string): Promise<string[]>;
  txt(name: string): Promise<string[]>;
  tlsa(name: string): Promise<TlsaRecord[]>;
}

interface Server {
  host: string;
  port: number;
}

/** Parses `host:port` (port defaults to 53; `[v6]:port` accepted). */
export function parseDnsServer(spec: string): Server {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (v6) return { host: v6[1]!, port: Number(v6[2] ?? 53) };
  const [host, port] = spec.split(':');
  return { host: host!, port: Number(port ?? 53) };
}

type Answer = { type: number; exchange?: string; priority?: number; address?: string; data?: string[] | Buffer };

/** Parses the RDATA of a TLSA record: usage, selector, matching type, association data. */
export function parseTlsa(rdata: Buffer): TlsaRecord {
  return { usage: rdata[0]!, selector: rdata[1]!, matchingType: rdata[2]!, data: rdata.subarray(3) };
}

const NXDOMAIN = 3;

/** A DnsLookup over dns2 UDP; the first server that answers is used, the next tried on a timeout or error. */
export function createDnsLookup(servers: readonly string[] = [], timeoutMs = 3000): DnsLookup {
  const system = new Resolver({ timeout: timeoutMs, tries: 2 });
  const targets = servers.map(parseDnsServer);
  if (targets.length === 0) {
    // The system resolver knows no TLSA: ask its first server directly over dns2 for that type.
    const [first] = system.getServers();
    if (first) targets.push(parseDnsServer(first.includes(':') && !first.startsWith('[') && first.split(':').length > 2 ? `[${first}]` : first));
  }
  const ask = async (name: string, type: string): Promise<Answer[]> => {
    let lastError: unknown;
    for (const t of targets) {
      try {
        const resolve = dns2.UDPClient({ dns: t.host, port: t.port, timeout: timeoutMs, socketType: t.host.includes(':') ? 'udp6' : 'udp4' } as never);
        const res = (await resolve(name, type)) as unknown as { header: { rcode: number }; answers: Answer[] };
        if (res.header.rcode === NXDOMAIN) return [];
        // SERVFAIL, REFUSED and the like are failures, not "no records": DANE must not read them as absence.
        if (res.header.rcode !== 0) throw Object.assign(new Error(`DNS rcode ${res.header.rcode}`), { code: 'ESERVFAIL' });
        const want = (dns2.Packet.TYPE as Record<string, number>)[type];
        return res.answers.filter((a) => a.type === want);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError ?? new Error('no DNS server');
  };
  const viaSystem = servers.length === 0;
  const empty = (err: unknown) => {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
    throw err;
  };
  return {
    mx: async (domain) =>
      viaSystem
        ? (await system.resolveMx(domain).catch(empty)).map((r) => ({ exchange: r.exchange, priority: r.priority }))
        : (await ask(domain, 'MX')).map((a) => ({ exchange: a.exchange!, priority: a.priority! })),
    a: async (host) => (viaSystem ? await system.resolve4(host).catch(empty) : (await ask(host, 'A')).map((a) => a.address!)),
    txt: async (name) =>
      viaSystem
        ? (await system.resolveTxt(name).catch(empty)).map((parts) => parts.join(''))
        : (await ask(name, 'TXT')).map((a) => (Array.isArray(a.data) ? a.data.join('') : String(a.data))),
    tlsa: async (name) =>
      (await ask(name, 'TLSA')).filter((a) => Buffer.isBuffer(a.data) && a.data.length > 3).map((a) => parseTlsa(a.data as Buffer)),
  };
}
