// Finds where a domain's mail goes: MX hosts in preference order (RFC 5321 §5.1), the implicit MX when there is none, and the address to connect to.
import { fail } from '../errors.js';
import type { DnsLookup } from './dns-client.js';

export interface MxHost {
  /** The MX host name: the name TLS verifies, MTA-STS matches and DANE looks up. */
  host: string;
  priority: number;
  /** True when the domain has no MX and its own address is used (RFC 5321 §5.1 implicit MX). */
  implicit: boolean;
}

/** Where to open the TCP connection for a host name; the name itself stays the TLS server name. */
export interface ConnectTarget {
  host: string;
  port: number;
}

export type Service = 'smtp' | 'https';

/**
 * Maps a host name to the address to connect to. The product resolves the A record and uses the
 * service's port; tests map `mx.good.test` to 127.0.0.1:<sink port> without changing any other step.
 */
export type ConnectTargetMap = (host: string, service: Service) => Promise<ConnectTarget>;

const servicePorts: Record<Service, number> = { smtp: 25, https: 443 };

/** The production mapping: the host's first A record, port 25 for SMTP and 443 for HTTPS. */
export function dnsConnectTarget(dns: DnsLookup): ConnectTargetMap {
  return async (host, service) => {
    const [address] = await dns.a(host);
    if (!address) throw fail('MX_NOT_FOUND', `no address record for ${host}`);
    return { host: address, port: servicePorts[service] };
  };
}

/** A fixed table in front of another mapping (tests, and a staging override of one MX). */
export function tableConnectTarget(table: Record<string, ConnectTarget>, fallback?: ConnectTargetMap): ConnectTargetMap {
  const byName = new Map(Object.entries(table).map(([k, v]) => [k.toLowerCase(), v]));
  return async (host, service) => {
    const hit = byName.get(`${service}:${host.toLowerCase()}`) ?? byName.get(host.toLowerCase());
    if (hit) return hit;
    if (!fallback) throw fail('MX_NOT_FOUND', `no connect target for ${host}`);
    return fallback(host, service);
  };
}

const normalise = (host: string) => host.toLowerCase().replace(/\.$/, '');

/** The domain part of an address, lower-cased. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) throw fail('BAD_REQUEST', 'recipient address has no domain');
  return normalise(address.slice(at + 1));
}

export interface MxResolver {
  resolve(domain: string): Promise<MxHost[]>;
}

/** Resolves MX records with a small TTL cache; a null MX (RFC 7505) or no MX and no address is MX_NOT_FOUND. */
export function createMxResolver(dns: DnsLookup, options: { ttlMs?: number; now?: () => number } = {}): MxResolver {
  const ttl = options.ttlMs ?? 300_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; hosts: MxHost[] }>();
  return {
    async resolve(domain) {
      const key = normalise(domain);
      const hit = cache.get(key);
      if (hit && now() - hit.at < ttl) return hit.hosts;
      const records = await dns.mx(key);
      let hosts: MxHost[];
      if (records.length === 1 && normalise(records[0]!.exchange) === '') {
        throw fail('MX_NOT_FOUND', `${key} publishes a null MX and accepts no mail`);
      } else if (records.length > 0) {
        // Equal preferences keep DNS order; RFC 5321 allows randomising them, a stable order keeps pools warm.
        hosts = records
          .map((r) => ({ host: normalise(r.exchange), priority: r.priority, implicit: false }))
          .filter((r) => r.host !== '')
          .sort((a, b) => a.priority - b.priority);
      } else {
        const addresses = await dns.a(key);
        if (addresses.length === 0) throw fail('MX_NOT_FOUND', `${key} has neither MX nor address records`);
        hosts = [{ host: key, priority: 0, implicit: true }];
      }
      cache.set(key, { at: now(), hosts });
      return hosts;
    },
  };
}
