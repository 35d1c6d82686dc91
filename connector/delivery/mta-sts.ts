// MTA-STS (RFC 8461): the `_mta-sts` TXT record, the HTTPS policy fetched with verified TLS, MX pattern matching, and a policy cache by id and max_age.
import https from 'node:https';
import type { DnsLookup } from './dns-client.js';
import { trustContext } from './trust.js';
import type { ConnectTargetMap } from './mx-resolver.js';

export type MtaStsMode = 'enforce' | 'testing' | 'none';

export interface MtaStsPolicy {
  id: string;
  mode: MtaStsMode;
  mx: string[];
  maxAgeSeconds: number;
  fetchedAt: number;
}

/** What the look-up found for a domain. */
export type MtaStsLookup =
  | { status: 'none' }
  | { status: 'policy'; policy: MtaStsPolicy; fromCache: boolean }
  | { status: 'fetch-failed'; reason: string };

/** The per-MX verdict written into the TLS evidence. */
export type MtaStsResult =
  | { status: 'none' }
  | { status: 'fetch-failed'; reason: string }
  | { status: 'mx-match'; mode: MtaStsMode; id: string }
  | { status: 'mx-mismatch'; mode: MtaStsMode; id: string };

/** Parses the TXT record `v=STSv1; id=...`; anything else is not an MTA-STS record. */
export function parseStsTxt(text: string): { id: string } | undefined {
  const fields = new Map(
    text.split(';').map((f) => f.trim()).filter(Boolean).map((f) => {
      const eq = f.indexOf('=');
      return [f.slice(0, eq).trim(), f.slice(eq + 1).trim()] as const;
    }),
  );
  const id = fields.get('id');
  if (fields.get('v') !== 'STSv1' || !id || !/^[A-Za-z0-9]{1,32}$/.test(id)) return undefined;
  return { id };
}

/** Parses the policy file (RFC 8461 §3.2); returns undefined when it is not a valid STSv1 policy. */
export function parseStsPolicy(body: string, id: string, fetchedAt: number): MtaStsPolicy | undefined {
  const mx: string[] = [];
  let version: string | undefined;
  let mode: string | undefined;
  let maxAge: number | undefined;
  for (const line of body.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'version') version = value;
    else if (key === 'mode') mode = value;
    else if (key === 'max_age' && /^\d{1,10}$/.test(value)) maxAge = Number(value);
    else if (key === 'mx') mx.push(value.toLowerCase());
  }
  if (version !== 'STSv1' || maxAge === undefined || !['enforce', 'testing', 'none'].includes(mode ?? '')) return undefined;
  if (mode !== 'none' && mx.length === 0) return undefined;
  return { id, mode: mode as MtaStsMode, mx, maxAgeSeconds: Math.min(maxAge, 31_557_600), fetchedAt };
}

/** RFC 8461 §4.1: a pattern `*.example.com` matches exactly one extra left-most label. */
export function mxMatches(policy: MtaStsPolicy, mxHost: string): boolean {
  const host = mxHost.toLowerCase().replace(/\.$/, '');
  return policy.mx.some((pattern) => {
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1);
      return host.endsWith(suffix) && !host.slice(0, -suffix.length).includes('.') && host.length > suffix.length;
    }
    return host === pattern;
  });
}

/** The verdict for one MX under the domain's look-up result. */
export function mtaStsVerdict(lookup: MtaStsLookup, mxHost: string): MtaStsResult {
  if (lookup.status === 'none') return { status: 'none' };
  if (lookup.status === 'fetch-failed') return { status: 'fetch-failed', reason: lookup.reason };
  const { policy } = lookup;
  if (policy.mode === 'none') return { status: 'none' };
  return { status: mxMatches(policy, mxHost) ? 'mx-match' : 'mx-mismatch', mode: policy.mode, id: policy.id };
}

export interface MtaStsOptions {
  dns: DnsLookup;
  connectTarget: ConnectTargetMap;
  /** Extra trusted CAs (config.extraCaFile); the system roots stay trusted. */
  ca?: string | string[];
  now?: () => number;
  timeoutMs?: number;
}

export interface MtaSts {
  lookup(domain: string): Promise<MtaStsLookup>;
}

const MAX_POLICY_BYTES = 64 * 1024;

/** An MTA-STS client with an in-memory policy cache (a policy stays usable until its max_age, even when the TXT record is gone). */
export function createMtaSts(options: MtaStsOptions): MtaSts {
  const now = options.now ?? Date.now;
  const cache = new Map<string, MtaStsPolicy>();
  const fresh = (p: MtaStsPolicy | undefined) => p && now() < p.fetchedAt + p.maxAgeSeconds * 1000;

  const fetchPolicy = async (domain: string): Promise<string> => {
    const policyHost = `mta-sts.${domain}`;
    const target = await options.connectTarget(policyHost, 'https');
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: target.host,
          port: target.port,
          path: '/.well-known/mta-sts.txt',
          method: 'GET',
          servername: policyHost,
          headers: { host: policyHost, accept: 'text/plain' },
          // The policy's authenticity rests on this handshake (RFC 8461 §3.3): verified, never relaxed.
          rejectUnauthorized: true,
          ...(options.ca ? { secureContext: trustContext(options.ca) } : { minVersion: 'TLSv1.2' as const }),
          timeout: options.timeoutMs ?? 10_000,
          agent: false,
        },
        (res) => {
          // Redirects are not followed (RFC 8461 §3.3).
          if (res.statusCode !== 200) {
            res.resume();
            return reject(new Error(`HTTP ${res.statusCode}`));
          }
          if (!/^text\/plain/i.test(res.headers['content-type'] ?? '')) {
            res.resume();
            return reject(new Error('policy is not text/plain'));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_POLICY_BYTES) req.destroy(new Error('policy too large'));
            else chunks.push(c);
          });
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('policy fetch timed out')));
      req.on('error', reject);
      req.end();
    });
  };

  return {
    async lookup(domain) {
      const key = domain.toLowerCase();
      const cached = cache.get(key);
      let txt: string[];
      try {
        txt = await options.dns.txt(`_mta-sts.${key}`);
      } catch {
        return fresh(cached) ? { status: 'policy', policy: cached!, fromCache: true } : { status: 'none' };
      }
      const records = txt.filter((t) => t.startsWith('v=STSv1')).map(parseStsTxt);
      if (records.length !== 1 || !records[0]) {
        return fresh(cached) ? { status: 'policy', policy: cached!, fromCache: true } : { status: 'none' };
      }
      const { id } = records[0];
      if (cached && cached.id === id && fresh(cached)) return { status: 'policy', policy: cached, fromCache: true };
      try {
        const body = await fetchPolicy(key);
        const policy = parseStsPolicy(body, id, now());
        if (!policy) throw new Error('invalid policy');
        cache.set(key, policy);
        return { status: 'policy', policy, fromCache: false };
      } catch (err) {
        if (fresh(cached)) return { status: 'policy', policy: cached!, fromCache: true };
        return { status: 'fetch-failed', reason: (err as Error).message.slice(0, 120) };
      }
    },
  };
}
