// Who of an audience may receive a campaign now: each member either passes or is excluded for one reason (counted, never named).
import type { PatientFacts } from '../../fhir/patient-facts.js';
import type { AuthorizationDecision } from '../consent/gate.js';
import { purposeModels, type Purpose } from '../consent/purposes.js';
import type { FieldCipher } from '../store/cipher.js';
import { loadQueries, type Db } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['suppressedAmong', 'alreadyQueued'] as const);

/** Exclusion reasons in the order they are tested: the first that applies is the one counted. */
export const exclusionReasons = ['unknown-patient', 'deceased', 'no-email', 'unsubscribed', 'no-authorization', 'suppressed', 'already-sent'] as const;
export type ExclusionReason = (typeof exclusionReasons)[number];
export type ExclusionCounts = Record<ExclusionReason, number>;

export const noExclusions = (): ExclusionCounts => Object.fromEntries(exclusionReasons.map((r) => [r, 0])) as ExclusionCounts;

/** What is known of one member when the decision is taken. */
export interface RecipientState {
  facts: PatientFacts | undefined;
  consent: Pick<AuthorizationDecision, 'allowed' | 'reason'>;
  /** A hard bounce on the address, or a complaint by the patient. */
  suppressed: boolean;
  /** This campaign already queued or sent a message to the patient. */
  alreadySent: boolean;
}

/**
 * The one rule, shared by the send run and the forecast. A revocation or a channel opt-out is `unsubscribed`;
 * marketing without an authorization in force (none, expired, not yet valid) is `no-authorization`.
 */
export function exclusionOf(purpose: Purpose, s: RecipientState): ExclusionReason | undefined {
  if (!s.facts) return 'unknown-patient';
  if (s.facts.deceased) return 'deceased';
  if (!s.facts.email || !String(s.facts.email).includes('@')) return 'no-email';
  if (!s.consent.allowed) {
    if (s.consent.reason === 'channel-opted-out' || s.consent.reason === 'revoked') return 'unsubscribed';
    return purposeModels[purpose] === 'authorization' ? 'no-authorization' : 'unsubscribed';
  }
  if (s.suppressed) return 'suppressed';
  if (s.alreadySent) return 'already-sent';
  return undefined;
}

export interface RecipientDeps {
  db: Db;
  cipher: Pick<FieldCipher, 'blindIndex'>;
  facts: { readFacts(ids: readonly number[]): Promise<Map<number, PatientFacts>> };
  consent: { isAllowedMany(ids: readonly number[], purpose: Purpose, channel?: 'email', at?: Date): Promise<Map<string, AuthorizationDecision>> };
}

export interface AssessedBatch {
  /** Members that pass, with their facts (in memory only, for the forecast's domain grouping). */
  eligible: Array<{ patientId: number; facts: PatientFacts }>;
  excluded: ExclusionCounts;
}

/** The address form the suppression list's blind index is taken of (delivery/bounces.ts). */
const normaliseAddress = (address: string) => address.trim().toLowerCase();

/** Decides one batch of members (ids of the store) for a purpose at `at`; `campaignId` enables the already-sent check. */
export async function assessRecipients(
  deps: RecipientDeps,
  input: { patientIds: readonly number[]; purpose: Purpose; at: Date; campaignId?: string },
): Promise<AssessedBatch> {
  const excluded = noExclusions();
  const eligible: AssessedBatch['eligible'] = [];
  if (input.patientIds.length === 0) return { eligible, excluded };
  const ids = [...new Set(input.patientIds)];
  const [facts, consent] = await Promise.all([deps.facts.readFacts(ids), deps.consent.isAllowedMany(ids, input.purpose, 'email', input.at)]);
  const indexOf = new Map<number, string>();
  for (const [id, f] of facts) if (f.email) indexOf.set(id, deps.cipher.blindIndex('email', normaliseAddress(String(f.email))).toString('hex'));
  const text = ids.map(String);
  const suppressedRows = await deps.db.query<{ address_index: Uint8Array | null; patient_id: string | null; reason: string }>(q.suppressedAmong, [
    [...new Set(indexOf.values())].map((h) => Buffer.from(h, 'hex')),
    text,
  ]);
  const suppressedIndexes = new Set(suppressedRows.filter((r) => r.address_index).map((r) => Buffer.from(r.address_index!).toString('hex')));
  // A complaint suppresses the patient whatever their address now; a hard bounce only the address.
  const complained = new Set(suppressedRows.filter((r) => r.reason === 'complaint' && r.patient_id != null).map((r) => String(r.patient_id)));
  const sent = input.campaignId
    ? new Set((await deps.db.query<{ patient_id: string }>(q.alreadyQueued, [input.campaignId, text])).map((r) => String(r.patient_id)))
    : new Set<string>();
  for (const id of ids) {
    const f = facts.get(id);
    const index = indexOf.get(id);
    const reason = exclusionOf(input.purpose, {
      facts: f,
      consent: consent.get(String(id)) ?? { allowed: false, reason: 'no-authorization' },
      suppressed: (index !== undefined && suppressedIndexes.has(index)) || complained.has(String(id)),
      alreadySent: sent.has(String(id)),
    });
    if (reason) excluded[reason]++;
    else eligible.push({ patientId: id, facts: f! });
  }
  return { eligible, excluded };
}

export function addCounts(into: ExclusionCounts, more: ExclusionCounts): ExclusionCounts {
  for (const r of exclusionReasons) into[r] += more[r];
  return into;
}
