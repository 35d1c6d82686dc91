// The delivery-mode forecast: for the recipients that pass the exclusions, what the TLS policy would do now, probing each recipient domain once.
import type { Router } from '../delivery/route.js';
import { decideDelivery, type DeliveryMode } from '../delivery/tls-policy.js';
import type { ExclusionCounts } from './recipients.js';

export interface DeliveryForecast {
  /** Members that pass every exclusion. */
  recipients: number;
  /** The message itself over verified TLS. */
  tls: number;
  /** The message itself without verified TLS (PHI-free content in tls-or-escrow only). */
  opportunistic: number;
  /** A PHI-free notice that links to the escrow portal. */
  escrow: number;
  /** Nothing would go now (tls-required without verified TLS, or no usable MX). */
  held: number;
  /** Members excluded (the sum of `excluded`). */
  suppressed: number;
  excluded: ExclusionCounts;
  /** Recipient domains probed. */
  domains: number;
  /** Set when the template does not allow the delivery mode. */
  modeProblem: string | null;
}

/** Counts per action over recipient domains; `phiFree` is the template's analysis (no finding, no PHI tag). */
export async function forecastDelivery(input: {
  router: Router;
  mode: DeliveryMode;
  phiFree: boolean;
  /** Recipient domain per eligible member (lower-case). */
  domains: readonly string[];
  excluded: ExclusionCounts;
  modeProblem: string | null;
}): Promise<DeliveryForecast> {
  const byDomain = new Map<string, number>();
  for (const d of input.domains) byDomain.set(d, (byDomain.get(d) ?? 0) + 1);
  const out: DeliveryForecast = {
    recipients: input.domains.length,
    tls: 0,
    opportunistic: 0,
    escrow: 0,
    held: 0,
    suppressed: Object.values(input.excluded).reduce((a, b) => a + b, 0),
    excluded: input.excluded,
    domains: byDomain.size,
    modeProblem: input.modeProblem,
  };
  // A few domains at a time: each assessment may probe several MX hosts.
  const entries = [...byDomain];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(8, entries.length) }, async () => {
      while (next < entries.length) {
        const [domain, n] = entries[next++]!;
        let action: 'tls' | 'opportunistic' | 'escrow' | 'held';
        try {
          const decision = decideDelivery({ mode: input.mode, phiFree: input.phiFree, route: await input.router.assess(domain) });
          action = decision.action === 'hold' ? 'held' : decision.action === 'notice' ? 'escrow' : decision.tls === 'verified' ? 'tls' : 'opportunistic';
        } catch {
          // No MX, no address, DNS failure: nothing could go now.
          action = 'held';
        }
        out[action] += n;
      }
    }),
  );
  return out;
}
