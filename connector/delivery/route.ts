// Assesses where a recipient domain's mail can go and how: per MX in preference order, the MTA-STS verdict, the DANE records and the STARTTLS probe.
import type { DaneResult } from './dane.js';
import { lookupTlsa, usableTlsa } from './dane.js';
import type { DnsLookup, TlsaRecord } from './dns-client.js';
import type { MtaSts, MtaStsResult } from './mta-sts.js';
import { mtaStsVerdict } from './mta-sts.js';
import type { ConnectTarget, ConnectTargetMap, MxHost, MxResolver } from './mx-resolver.js';
import type { ProbeResult, StarttlsProbe } from './starttls-probe.js';

export interface RouteCandidate {
  mx: string;
  target: ConnectTarget;
  tlsa: TlsaRecord[];
  mtaSts: MtaStsResult;
  dane: DaneResult;
  probe?: ProbeResult;
  /** Verified TLS to this MX satisfies every published requirement (PKIX, name, MTA-STS, DANE). */
  verified: boolean;
  /** The recipient published a requirement for TLS to this MX (MTA-STS enforce or usable TLSA). */
  requiresTls: boolean;
  /** Why this MX is not verified, or why it may not be used at all. */
  reason?: string;
}

export interface RouteAssessment {
  domain: string;
  /** The preferred MX that verified TLS reaches; absent when none does. */
  verified?: RouteCandidate;
  /** The preferred MX that may take PHI-free mail without verified TLS (no published TLS requirement). */
  opportunistic?: RouteCandidate;
  /** Every MX looked at, in preference order. */
  candidates: RouteCandidate[];
  /** One line per MX: why it could not carry PHI. */
  reasons: string[];
  /** A relay route: the smarthost takes everything (the recipient's MTA-STS/DANE are then its job). */
  relay?: boolean;
}

export interface Router {
  assess(domain: string): Promise<RouteAssessment>;
  /** Drops what is cached for a domain after a delivery contradicted it (a certificate changed, say). */
  forget(domain: string, mx?: string): void;
}

export interface DirectRouterOptions {
  dns: DnsLookup;
  mxResolver: MxResolver;
  mtaSts: MtaSts;
  probe: StarttlsProbe;
  connectTarget: ConnectTargetMap;
  /** Most MX hosts looked at per domain (default 5). */
  maxMx?: number;
}

/** Direct-to-MX routing. */
export function createDirectRouter(options: DirectRouterOptions): Router {
  const assessMx = async (mx: MxHost, mtaStsLookup: Awaited<ReturnType<MtaSts['lookup']>>): Promise<RouteCandidate> => {
    const mtaSts = mtaStsVerdict(mtaStsLookup, mx.host);
    const enforce = mtaSts.status === 'mx-match' || mtaSts.status === 'mx-mismatch' ? mtaSts.mode === 'enforce' : false;
    let target: ConnectTarget;
    try {
      target = await options.connectTarget(mx.host, 'smtp');
    } catch {
      return { mx: mx.host, target: { host: '', port: 0 }, tlsa: [], mtaSts, dane: { status: 'none' }, verified: false, requiresTls: enforce, reason: 'no-address' };
    }
    const tlsaLookup = await lookupTlsa(options.dns, mx.host);
    const tlsa = tlsaLookup.records;
    const daneRequired = usableTlsa(tlsa).length > 0 || tlsaLookup.failed;
    const base = { mx: mx.host, target, tlsa, mtaSts, requiresTls: enforce || daneRequired };
    if (tlsaLookup.failed) return { ...base, dane: { status: 'lookup-failed' }, verified: false, reason: 'tlsa-lookup-failed' };
    if (enforce && mtaSts.status === 'mx-mismatch') return { ...base, dane: { status: tlsa.length ? 'unusable' : 'none', records: tlsa.length } as DaneResult, verified: false, reason: 'mta-sts-mx-mismatch' };
    const probe = await options.probe.probe({ mx: mx.host, target, tlsa });
    const verified = !probe.failure && probe.peer.verified;
    return { ...base, dane: probe.dane, probe, verified, ...(verified ? {} : { reason: probe.failure ?? 'not-verified' }) };
  };

  return {
    async assess(domain) {
      const [mxHosts, stsLookup] = await Promise.all([options.mxResolver.resolve(domain), options.mtaSts.lookup(domain)]);
      const candidates: RouteCandidate[] = [];
      const reasons: string[] = [];
      let verified: RouteCandidate | undefined;
      // Walk in preference order and stop at the first MX verified TLS reaches: lower-preference MXs are only looked at when needed.
      for (const mx of mxHosts.slice(0, options.maxMx ?? 5)) {
        const c = await assessMx(mx, stsLookup);
        candidates.push(c);
        if (c.verified) {
          verified = c;
          break;
        }
        reasons.push(`${c.mx}: ${c.reason}`);
      }
      const opportunistic = candidates.find((c) => !c.requiresTls && c.reason !== 'no-address');
      return { domain, candidates, reasons, ...(verified ? { verified } : {}), ...(opportunistic ? { opportunistic } : {}) };
    },
    forget(_domain, mx) {
      if (mx) options.probe.forget(mx);
    },
  };
}

/** Routing through a smarthost: every message goes to the relay over verified TLS (the transport enforces it). */
export function createRelayRouter(relay: { host: string; target: ConnectTarget }): Router {
  const candidate: RouteCandidate = {
    mx: relay.host, target: relay.target, tlsa: [], mtaSts: { status: 'none' }, dane: { status: 'none' }, verified: true, requiresTls: true,
  };
  return {
    assess: async (domain) => ({ domain, verified: candidate, candidates: [candidate], reasons: [], relay: true }),
    forget: () => undefined,
  };
}
