// The dispatch-time decision from the current authorization rows: pure, so the registry and its tests share one rule.
import { purposeModels, type AuthorizationStatus, type Purpose } from './purposes.js';

/** The newest history row of one (patient, channel, purpose) as the gate needs it. */
export interface CurrentAuthorization {
  id: string;
  status: AuthorizationStatus;
  grantedAt: Date | null;
  expiresAt: Date | null;
  textVersion: string | null;
}

export type DecisionReason =
  | 'authorized'
  | 'treatment-permitted'
  | 'no-authorization'
  | 'revoked'
  | 'expired'
  | 'not-yet-valid'
  | 'channel-opted-out';

export interface AuthorizationDecision {
  allowed: boolean;
  reason: DecisionReason;
  /** The authorization text version the decision rests on (null when no authorization row was involved). */
  consentVersion: string | null;
  /** The history row the decision rests on, for the audit trail. */
  authorizationId: string | null;
}

/**
 * Decides one purpose at `at` from the newest purpose row and the newest channel-wide row.
 * A channel opt-out wins over everything; marketing needs an active grant whose period covers `at`;
 * treatment purposes are allowed unless their purpose was revoked.
 */
export function decide(
  purpose: Purpose,
  at: Date,
  purposeRow: CurrentAuthorization | undefined,
  channelRow: CurrentAuthorization | undefined,
): AuthorizationDecision {
  if (channelRow?.status === 'revoked') return deny('channel-opted-out', channelRow);
  if (purposeModels[purpose] === 'opt-out') {
    if (purposeRow?.status === 'revoked') return deny('revoked', purposeRow);
    return {
      allowed: true,
      reason: 'treatment-permitted',
      consentVersion: purposeRow?.status === 'active' ? purposeRow.textVersion : null,
      authorizationId: purposeRow?.id ?? null,
    };
  }
  if (!purposeRow) return { allowed: false, reason: 'no-authorization', consentVersion: null, authorizationId: null };
  if (purposeRow.status === 'revoked') return deny('revoked', purposeRow);
  if (purposeRow.status === 'expired') return deny('expired', purposeRow);
  if (purposeRow.grantedAt && at.getTime() < purposeRow.grantedAt.getTime()) return deny('not-yet-valid', purposeRow);
  if (purposeRow.expiresAt && at.getTime() >= purposeRow.expiresAt.getTime()) return deny('expired', purposeRow);
  return { allowed: true, reason: 'authorized', consentVersion: purposeRow.textVersion, authorizationId: purposeRow.id };
}

function deny(reason: DecisionReason, row: CurrentAuthorization): AuthorizationDecision {
  return { allowed: false, reason, consentVersion: row.textVersion, authorizationId: row.id };
}
