// The durable outbox: enqueue with an idempotency key and a stable Message-ID, claim batches with FOR UPDATE SKIP LOCKED under a lease, finish with evidence, cancel queued mail.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { loadQueries, type Db, type Queryable } from '../store/db.js';
import type { TlsEvidence } from './tls-evidence.js';
import { deliveryModes, type DeliveryMode } from './tls-policy.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'enqueue', 'claim', 'renewLeases', 'finishMany', 'finishAttempts', 'cancelQueued', 'byId', 'byIdempotencyKey', 'attemptsOf', 'campaignStates', 'nextDue',
] as const);

export type OutboxState = 'queued' | 'sending' | 'held' | 'delivered' | 'notice_sent' | 'failed' | 'cancelled';
export type DeliveredAs = 'message' | 'notice' | 'opportunistic';

export interface EnqueueInput {
  campaignId: string;
  templateVersion: number;
  /** The internal patient id (never an address or a name): the message is rendered from it at dispatch. */
  patientId: string;
  /** 'marketing' or a treatment purpose ('appointment', 'refill', 'screening'); the consent gate checks it. */
  purpose: string;
  deliveryMode: DeliveryMode;
  channel?: string;
  /** Defaults to campaign:version:patient, so a campaign enqueued twice queues each patient once. */
  idempotencyKey?: string;
  notBefore?: Date;
  maxAttempts?: number;
}

/** A claimed row: what the dispatcher needs to render, gate and send one message. */
export interface OutboxMessage {
  id: string;
  idempotencyKey: string;
  messageId: string;
  campaignId: string;
  templateVersion: number;
  patientId: string;
  purpose: string;
  channel: string;
  deliveryMode: DeliveryMode;
  state: OutboxState;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: Date;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  consentVersion: string | null;
  deliveredAs: DeliveredAs | null;
  recipientDomain: string | null;
  tlsEvidence: TlsEvidence | null;
  smtpResponse: string | null;
  lastError: string | null;
  cancelReason: string | null;
  possibleDuplicate: boolean;
  /** When this attempt's claim was made (the row's last update when read outside a claim). */
  claimedAt: Date;
  createdAt: Date;
  finishedAt: Date | null;
}

/** How an attempt ended. */
export type Completion =
  | { state: 'delivered' | 'notice_sent'; deliveredAs: DeliveredAs; consentVersion: string | null; recipientDomain: string; evidence: TlsEvidence; smtpResponse: string }
  | { state: 'queued' | 'held'; nextAttemptAt: Date; reason: string; consentVersion?: string | null; recipientDomain?: string; evidence?: TlsEvidence; smtpResponse?: string; refundAttempt?: boolean }
  | { state: 'failed'; reason: string; consentVersion?: string | null; recipientDomain?: string; evidence?: TlsEvidence; smtpResponse?: string }
  | { state: 'cancelled'; reason: string; consentVersion?: string | null };

export interface CancelFilter {
  patientId?: string;
  campaignId?: string;
  purpose?: string;
  channel?: string;
}

export interface OutboxOptions {
  /** The domain of our Message-IDs (the sender domain). */
  messageIdDomain: string;
  now?: () => Date;
}

type Row = Record<string, unknown>;
const toDate = (v: unknown) => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const fromRow = (r: Row): OutboxMessage => ({
  id: String(r.id),
  idempotencyKey: r.idempotency_key as string,
  messageId: r.message_id as string,
  campaignId: r.campaign_id as string,
  templateVersion: Number(r.template_version),
  patientId: r.patient_id as string,
  purpose: r.purpose as string,
  channel: r.channel as string,
  deliveryMode: r.delivery_mode as DeliveryMode,
  state: r.state as OutboxState,
  attempts: Number(r.attempts),
  maxAttempts: Number(r.max_attempts),
  nextAttemptAt: toDate(r.next_attempt_at)!,
  leaseOwner: (r.lease_owner as string | null) ?? null,
  leaseUntil: toDate(r.lease_until),
  consentVersion: (r.consent_version as string | null) ?? null,
  deliveredAs: (r.delivered_as as DeliveredAs | null) ?? null,
  recipientDomain: (r.recipient_domain as string | null) ?? null,
  tlsEvidence: (r.tls_evidence as TlsEvidence | null) ?? null,
  smtpResponse: (r.smtp_response as string | null) ?? null,
  lastError: (r.last_error as string | null) ?? null,
  cancelReason: (r.cancel_reason as string | null) ?? null,
  possibleDuplicate: Boolean(r.possible_duplicate),
  claimedAt: toDate(r.updated_at)!,
  createdAt: toDate(r.created_at)!,
  finishedAt: toDate(r.finished_at),
});

export interface Outbox {
  /** Queues messages; a repeated idempotency key is ignored. Returns the number newly queued. */
  enqueue(items: readonly EnqueueInput[]): Promise<number>;
  /** Claims up to `limit` due messages (queued, held and due, or whose lease expired) for `leaseMs`. */
  claim(worker: string, limit: number, leaseMs: number): Promise<OutboxMessage[]>;
  /** Extends the lease of messages `worker` still holds to now + `leaseMs`; returns the ids renewed (rows being finished right now are skipped). */
  renewLeases(worker: string, ids: readonly string[], leaseMs: number): Promise<string[]>;
  /** Records how an attempt ended; false when the lease was lost (another worker owns the message now). */
  finish(message: OutboxMessage, worker: string, completion: Completion): Promise<boolean>;
  /** The same for many attempts in one transaction (the dispatcher flushes in groups); one flag per item. */
  /**
   * Records many outcomes in one transaction; `alongside` writes what must commit with them (the webhook events
   * of the outcomes this worker still held), so a crash keeps both or neither.
   */
  finishMany(
    worker: string,
    items: ReadonlyArray<{ message: OutboxMessage; completion: Completion }>,
    alongside?: (tx: Queryable, recorded: ReadonlyArray<{ message: OutboxMessage; completion: Completion }>) => Promise<void>,
  ): Promise<boolean[]>;
  /** Cancels queued and held messages that match (revocations, unsubscribes, withdrawn approvals). */
  cancelQueued(filter: CancelFilter, reason: string): Promise<number>;
  get(id: string): Promise<OutboxMessage | undefined>;
  byIdempotencyKey(key: string): Promise<OutboxMessage | undefined>;
  attempts(id: string): Promise<Array<{ attempt: number; worker: string; outcome: string | null; finishedAt: Date | null }>>;
  campaignStates(campaignId: string): Promise<Partial<Record<OutboxState, number>>>;
  /** When the next message falls due (undefined when nothing is pending). */
  nextDue(): Promise<Date | undefined>;
}

/** The stable Message-ID of an idempotency key: every retry and every resend after a crash carries the same one. */
export function messageIdFor(idempotencyKey: string, domain: string): string {
  return `<${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}@${domain}>`;
}

export function createOutbox(db: Db, options: OutboxOptions): Outbox {
  const now = options.now ?? (() => new Date());
  const api: Outbox = {
    async enqueue(items) {
      if (items.length === 0) return 0;
      for (const i of items) {
        if (!deliveryModes.includes(i.deliveryMode)) throw fail('BAD_REQUEST', 'unknown delivery mode', { field: 'deliveryMode' });
        if (!i.patientId || !i.campaignId || !i.purpose) throw fail('BAD_REQUEST', 'campaignId, patientId and purpose are required');
      }
      const at = now();
      const keys = items.map((i) => i.idempotencyKey ?? `${i.campaignId}:${i.templateVersion}:${i.patientId}`);
      const rows = await db.query(q.enqueue, [
        keys,
        keys.map((k) => messageIdFor(k, options.messageIdDomain)),
        items.map((i) => i.campaignId),
        items.map((i) => i.templateVersion),
        items.map((i) => i.patientId),
        items.map((i) => i.purpose),
        items.map((i) => i.channel ?? 'email'),
        items.map((i) => i.deliveryMode),
        items.map((i) => i.maxAttempts ?? 12),
        items.map((i) => (i.notBefore ?? at).toISOString()),
        items.map(() => at.toISOString()),
      ]);
      return rows.length;
    },
    async claim(worker, limit, leaseMs) {
      const at = now();
      const rows = await db.query<Row>(q.claim, [worker, at, limit, new Date(at.getTime() + leaseMs)]);
      return rows.map(fromRow);
    },
    async renewLeases(worker, ids, leaseMs) {
      if (ids.length === 0) return [];
      const rows = await db.query<{ id: unknown }>(q.renewLeases, [worker, [...ids], new Date(now().getTime() + leaseMs)]);
      return rows.map((r) => String(r.id));
    },
    async finish(message, worker, completion) {
      const [kept] = await api.finishMany(worker, [{ message, completion }]);
      return kept!;
    },
    async finishMany(worker, items, alongside) {
      if (items.length === 0) return [];
      const at = now();
      const col = <T>(f: (c: Completion, m: OutboxMessage, i: number) => T) => items.map(({ message, completion }, i) => f(completion, message, i));
      const evidence = col((c) => ('evidence' in c && c.evidence ? JSON.stringify(c.evidence) : null));
      const smtp = col((c) => ('smtpResponse' in c && c.smtpResponse ? c.smtpResponse : null));
      const reason = col((c) => ('reason' in c ? c.reason.slice(0, 500) : null));
      return db.transaction(async (tx) => {
        const rows = await tx.query<{ id: unknown }>(q.finishMany, [
          worker,
          at,
          col((_c, m) => m.id),
          col((_c, m) => m.attempts),
          col((c) => c.state),
          col((c) => ('nextAttemptAt' in c ? c.nextAttemptAt.toISOString() : null)),
          col((c) => ('consentVersion' in c ? (c.consentVersion ?? null) : null)),
          col((c) => ('deliveredAs' in c ? c.deliveredAs : null)),
          col((c) => ('recipientDomain' in c ? (c.recipientDomain ?? null) : null)),
          evidence,
          smtp,
          col((c, _m, i) => (c.state === 'cancelled' ? null : reason[i]!)),
          col((c, _m, i) => (c.state === 'cancelled' ? reason[i]! : null)),
          col((c) => ('refundAttempt' in c && c.refundAttempt ? 1 : 0)),
        ]);
        const kept = new Set(rows.map((r) => String(r.id)));
        await tx.query(q.finishAttempts, [
          worker,
          at,
          col((_c, m) => m.id),
          col((_c, m) => m.attempts),
          col((_c, m) => m.claimedAt.toISOString()),
          col((c, m) => (kept.has(m.id) ? c.state : `${c.state} (lease lost)`)),
          smtp,
        ]);
        if (alongside) await alongside(tx, items.filter(({ message }) => kept.has(message.id)));
        return items.map(({ message }) => kept.has(message.id));
      });
    },
    async cancelQueued(filter, reason) {
      if (!filter.patientId && !filter.campaignId) throw fail('BAD_REQUEST', 'cancel needs a patient or a campaign');
      const rows = await db.query(q.cancelQueued, [
        filter.patientId ?? null, filter.campaignId ?? null, filter.purpose ?? null, filter.channel ?? null, reason.slice(0, 500), now(),
      ]);
      return rows.length;
    },
    async get(id) {
      const [row] = await db.query<Row>(q.byId, [id]);
      return row ? fromRow(row) : undefined;
    },
    async byIdempotencyKey(key) {
      const [row] = await db.query<Row>(q.byIdempotencyKey, [key]);
      return row ? fromRow(row) : undefined;
    },
    async attempts(id) {
      const rows = await db.query<Row>(q.attemptsOf, [id]);
      return rows.map((r) => ({ attempt: Number(r.attempt), worker: r.worker as string, outcome: (r.outcome as string | null) ?? null, finishedAt: toDate(r.finished_at) }));
    },
    async campaignStates(campaignId) {
      const rows = await db.query<{ state: OutboxState; n: number }>(q.campaignStates, [campaignId]);
      return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    },
    async nextDue() {
      const [row] = await db.query<{ at: unknown }>(q.nextDue);
      return toDate(row?.at) ?? undefined;
    },
  };
  return api;
}
