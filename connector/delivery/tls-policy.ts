// Decides, per message and route, what may travel: the message over verified TLS, a PHI-free escrow notice, a hold, or (PHI-free content only) opportunistic delivery.
import type { RouteAssessment, RouteCandidate } from './route.js';

export const deliveryModes = ['tls-required', 'tls-or-escrow', 'escrow'] as const;
export type DeliveryMode = (typeof deliveryModes)[number];

export type PolicyDecision =
  /** The message itself, over a connection that must verify (the transport refuses otherwise). */
  | { action: 'deliver'; tls: 'verified'; candidate: RouteCandidate }
  /** The message itself without verified TLS: only for content cleared as PHI-free, never where the recipient requires TLS. */
  | { action: 'deliver'; tls: 'opportunistic'; candidate: RouteCandidate }
  /** A PHI-free notice linking to the escrow portal; verified TLS when there is any. */
  | { action: 'notice'; tls: 'verified' | 'opportunistic'; candidate: RouteCandidate }
  /** Nothing is sent now; the outbox retries later and fails the message in the end. */
  | { action: 'hold'; reason: string };

export interface PolicyInput {
  mode: DeliveryMode;
  /** True only when the PHI scan cleared the rendered content and no PHI merge tag touched it. */
  phiFree: boolean;
  route: RouteAssessment;
}

const why = (route: RouteAssessment) => (route.reasons.length ? route.reasons.join('; ') : 'no usable MX');

export function decideDelivery({ mode, phiFree, route }: PolicyInput): PolicyDecision {
  const noticeRoute = (): PolicyDecision =>
    route.verified
      ? { action: 'notice', tls: 'verified', candidate: route.verified }
      : route.opportunistic
        ? { action: 'notice', tls: 'opportunistic', candidate: route.opportunistic }
        : { action: 'hold', reason: `recipient requires TLS and none verifies: ${why(route)}` };

  if (mode === 'escrow') return noticeRoute();
  if (route.verified) return { action: 'deliver', tls: 'verified', candidate: route.verified };
  if (mode === 'tls-required') return { action: 'hold', reason: `verified TLS unavailable: ${why(route)}` };
  // tls-or-escrow: cleared content may go as it is, where the recipient does not require TLS.
  if (phiFree && route.opportunistic) return { action: 'deliver', tls: 'opportunistic', candidate: route.opportunistic };
  return noticeRoute();
}
