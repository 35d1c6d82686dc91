// Turns what happens to messages into signed webhook events: dispatcher outcomes in the transaction that records them, and opens, clicks, bounces, complaints and one-click unsubscribes read back from the store.
import type { ConsentChange } from '../consent/registry.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import { loadQueries, type Db, type Queryable } from '../store/db.js';
import type { Completion, OutboxMessage } from './outbox.js';
import type { WebhookEvent, Webhooks } from './webhooks.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'webhookCursor', 'maxTrackingEvent', 'maxFeedback', 'trackingEventsAfter', 'feedbackAfter', 'lastSentTo',
] as const);

export interface DeliveryEventsDeps {
  db: Db;
  webhooks: Pick<Webhooks, 'emit' | 'emitMany'>;
  /** Rows read per pump. */
  batchSize?: number;
  log?: Log;
}

export interface DeliveryEvents {
  /**
   * The dispatcher's recordWithOutcomes: delivered, notice_sent, held, failed and cancelled become events (a retry does
   * not), queued in the same transaction that records the outcomes, so a crash keeps both or neither.
   */
  record(tx: Queryable, recorded: ReadonlyArray<{ message: OutboxMessage; completion: Completion }>): Promise<void>;
  /**
   * Emits tracking events (opened, clicked) and feedback (bounced, complained) recorded since the last pump, by any
   * process. Event ids name the source row, so two workers pumping at once queue each event once.
   */
  pump(): Promise<number>;
  /** A consent listener: a one-click unsubscribe becomes message.unsubscribed, tied to the last message sent to that patient. */
  consentChanged(changes: readonly ConsentChange[]): Promise<void>;
}

type Detail = NonNullable<WebhookEvent['detail']>;

/** A PHI-free reason code: never the free text (an SMTP response may quote the recipient address). */
function reasonCode(completion: Completion): string | null {
  if (!('reason' in completion)) return null;
  const r = completion.reason;
  if (completion.state === 'held') return r === 'escrow portal not configured' ? 'escrow-not-configured' : 'tls-unavailable';
  if (completion.state === 'cancelled') return /^(consent|suppressed)\b/.exec(r)?.[1] ?? 'cancelled';
  return /^([A-Z][A-Z_]+):/.exec(r)?.[1] ?? (r.startsWith('gave up') ? 'RETRIES_EXHAUSTED' : 'FAILED');
}

const outcomeTypes: Partial<Record<Completion['state'], WebhookEvent['type']>> = {
  delivered: 'message.delivered',
  notice_sent: 'message.notice_sent',
  held: 'message.held',
  failed: 'message.failed',
  cancelled: 'message.cancelled',
};

/** The webhook event of one recorded outcome (none for a retry); its id names the attempt, so it is queued once. */
function outcomeEvent(message: OutboxMessage, completion: Completion): { event: WebhookEvent; eventId: string } | undefined {
  const type = outcomeTypes[completion.state];
  if (!type) return undefined;
  const detail: Detail = { attempt: message.attempts };
  if ('deliveredAs' in completion) detail.deliveredAs = completion.deliveredAs;
  if ('evidence' in completion && completion.evidence) {
    detail.tlsVerified = completion.evidence.verified;
    detail.route = completion.evidence.route;
  }
  const code = reasonCode(completion);
  if (code) detail.reason = code;
  return {
    event: { type, outboxId: message.id, campaignId: message.campaignId, at: new Date().toISOString(), detail },
    eventId: `outcome:${message.id}:${message.attempts}:${completion.state}`,
  };
}

const iso = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();

export function createDeliveryEvents(deps: DeliveryEventsDeps): DeliveryEvents {
  const log = deps.log ?? silentLog;
  const limit = deps.batchSize ?? 500;
  const cursors: { tracking?: number; feedback?: number } = {};
  /** Resumes after the last row already emitted; with none, starts from now (history before webhooks is not replayed). */
  const cursorOf = async (kind: 'tracking' | 'feedback'): Promise<number> => {
    if (cursors[kind] !== undefined) return cursors[kind]!;
    const [done] = await deps.db.query<{ seq: unknown }>(q.webhookCursor, [kind]);
    const [latest] = done?.seq != null ? [done] : await deps.db.query<{ seq: unknown }>(kind === 'tracking' ? q.maxTrackingEvent : q.maxFeedback);
    return (cursors[kind] = Number(latest?.seq ?? 0));
  };

  return {
    async record(tx, recorded) {
      const events = recorded.flatMap(({ message, completion }) => {
        const event = outcomeEvent(message, completion);
        return event ? [event] : [];
      });
      await deps.webhooks.emitMany(events, tx);
    },
    async pump() {
      let emitted = 0;
      let after = await cursorOf('tracking');
      for (;;) {
        const rows = await deps.db.query<{ id: unknown; outbox_id: unknown; campaign_id: string; kind: string; agent: string; machine: boolean; at: unknown }>(q.trackingEventsAfter, [after, limit]);
        for (const r of rows) {
          await deps.webhooks.emit(
            { type: r.kind === 'click' ? 'message.clicked' : 'message.opened', outboxId: String(r.outbox_id), campaignId: r.campaign_id, at: iso(r.at), detail: { agent: r.agent, machine: Boolean(r.machine) } },
            `tracking:${String(r.id)}`,
          );
          emitted++;
          cursors.tracking = after = Number(r.id);
        }
        if (rows.length < limit) break;
      }
      after = await cursorOf('feedback');
      for (;;) {
        const rows = await deps.db.query<{ id: unknown; kind: string; outbox_id: unknown; status: string | null; received_at: unknown; campaign_id: string | null }>(q.feedbackAfter, [after, limit]);
        for (const r of rows) {
          const bounce = r.kind === 'hard-bounce' ? 'hard' : r.kind === 'soft-bounce' ? 'soft' : undefined;
          // Reports we cannot tie to one of our messages carry no ids to give: they are recorded, not emitted.
          if (r.outbox_id != null && (bounce || r.kind === 'complaint')) {
            await deps.webhooks.emit(
              {
                type: bounce ? 'message.bounced' : 'message.complained',
                outboxId: String(r.outbox_id),
                campaignId: r.campaign_id,
                at: iso(r.received_at),
                detail: bounce ? { bounce, status: r.status } : { feedbackType: r.status },
              },
              `feedback:${String(r.id)}`,
            );
            emitted++;
          }
          cursors.feedback = after = Number(r.id);
        }
        if (rows.length < limit) break;
      }
      return emitted;
    },
    async consentChanged(changes) {
      for (const c of changes) {
        if (c.source !== 'unsubscribe-link' || c.status === 'active') continue;
        try {
          const [sent] = await deps.db.query<{ id: unknown; campaign_id: string }>(q.lastSentTo, [c.patientId, c.channel, c.purpose === '*' ? null : c.purpose]);
          await deps.webhooks.emit(
            {
              type: 'message.unsubscribed',
              outboxId: sent ? String(sent.id) : null,
              campaignId: sent?.campaign_id ?? null,
              at: c.recordedAt.toISOString(),
              detail: { purpose: c.purpose, channel: c.channel },
            },
            `unsubscribe:${c.authorizationId}`,
          );
        } catch (err) {
          log.error({ err: err as Error }, 'unsubscribe webhook not queued');
        }
      }
    },
  };
}
