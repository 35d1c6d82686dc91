// Signed webhooks: PHI-free delivery events POSTed with an HMAC-SHA256 signature over a timestamp and the body, retried with back-off, and replayable.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { loadQueries, type Db, type Queryable } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertWebhook', 'insertWebhooks', 'claimWebhooks', 'finishWebhook', 'replayWebhooks'] as const);

/** What a webhook says: ids and states only, never an address, a name or content. */
export interface WebhookEvent {
  type:
    | 'message.delivered' | 'message.notice_sent' | 'message.failed' | 'message.cancelled' | 'message.held' | 'message.bounced'
    | 'message.complained' | 'message.opened' | 'message.clicked' | 'message.unsubscribed';
  /** The outbox row; null for an unsubscribe that no sent message of ours can be tied to. */
  outboxId: string | null;
  campaignId: string | null;
  at: string;
  detail?: Record<string, string | number | boolean | null>;
}

export const SIGNATURE_HEADER = 'x-outreach-signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the Stripe scheme: replay-resistant with a tolerance). */
export function signWebhook(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** For receivers (and tests): true when the signature matches and is no older than `toleranceSeconds`. */
export function verifyWebhook(secret: string, header: string, body: string, now: Date, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(now.getTime() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(parts.v1);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebhookDeps {
  db: Db;
  endpoints: readonly string[];
  secret: string;
  /** Delay before attempt n+1 (ms); the last value repeats (default 1 min, 5 min, 30 min, 2 h, 12 h). */
  retryDelaysMs?: readonly number[];
  maxAttempts?: number;
  timeoutMs?: number;
  now?: () => Date;
  /** Extra trusted CAs for https endpoints (added to Node's roots; verification is never turned off). */
  ca?: readonly string[];
  /** The HTTP client; defaults to a node:http(s) POST that trusts `ca` as well as the system roots and never follows redirects. */
  post?: (url: string, body: string, headers: Record<string, string>) => Promise<number>;
}

/** One POST; resolves with the status code (redirects are not followed: a 3xx is a failed delivery). */
export function postJson(url: string, body: string, headers: Record<string, string>, options: { ca?: readonly string[]; timeoutMs?: number } = {}): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: options.timeoutMs ?? 10_000,
        ...(target.protocol === 'https:' && options.ca?.length ? { ca: [...rootCertificates, ...options.ca] } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('webhook timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export interface Webhooks {
  /** Queues one event for every endpoint; the same event id is never queued twice. */
  emit(event: WebhookEvent, eventId?: string): Promise<string>;
  /** The same for many events in one statement; inside `tx` when given (events that must commit with what they describe). */
  emitMany(events: ReadonlyArray<{ event: WebhookEvent; eventId: string }>, tx?: Queryable): Promise<void>;
  /** Sends what is due; returns how many were delivered and how many are to be retried. */
  runDue(limit?: number): Promise<{ delivered: number; retrying: number; failed: number }>;
  /** Sends again: given deliveries, or everything created since a time. */
  replay(filter: { ids?: readonly string[]; since?: Date }): Promise<number>;
}

export function createWebhooks(deps: WebhookDeps): Webhooks {
  const now = deps.now ?? (() => new Date());
  const delays = deps.retryDelaysMs ?? [60_000, 300_000, 1_800_000, 7_200_000, 43_200_000];
  const post =
    deps.post ??
    ((url: string, body: string, headers: Record<string, string>) =>
      postJson(url, body, headers, { ...(deps.ca ? { ca: deps.ca } : {}), ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}) }));
  return {
    async emit(event, eventId = randomUUID()) {
      if (deps.endpoints.length) await deps.db.query(q.insertWebhook, [eventId, event.type, JSON.stringify(event), now(), [...deps.endpoints]]);
      return eventId;
    },
    async emitMany(events, tx = deps.db) {
      if (!deps.endpoints.length || !events.length) return;
      await tx.query(q.insertWebhooks, [events.map((e) => e.eventId), events.map((e) => e.event.type), events.map((e) => JSON.stringify(e.event)), now(), [...deps.endpoints]]);
    },
    async runDue(limit = 100) {
      const result = { delivered: 0, retrying: 0, failed: 0 };
      const claimedAt = now();
      const rows = await deps.db.query<{ id: unknown; event_id: string; endpoint: string; event_type: string; payload: unknown; attempts: number }>(q.claimWebhooks, [
        claimedAt, limit, new Date(claimedAt.getTime() + 120_000),
      ]);
      for (const row of rows) {
        const body = typeof row.payload === 'string' ? row.payload : JSON.stringify(row.payload);
        const at = now();
        let status = 0;
        try {
          status = await post(row.endpoint, body, {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(deps.secret, body, at),
            'x-outreach-event-id': row.event_id,
            'x-outreach-event-type': row.event_type,
          });
        } catch {
          status = 0;
        }
        const attempt = Number(row.attempts) + 1;
        if (status >= 200 && status < 300) {
          await deps.db.query(q.finishWebhook, [row.id, 'delivered', status, null, at]);
          result.delivered++;
        } else if (attempt >= (deps.maxAttempts ?? 8)) {
          await deps.db.query(q.finishWebhook, [row.id, 'failed', status || null, null, null]);
          result.failed++;
        } else {
          const delay = delays[Math.min(attempt - 1, delays.length - 1)]!;
          await deps.db.query(q.finishWebhook, [row.id, 'pending', status || null, new Date(at.getTime() + delay), null]);
          result.retrying++;
        }
      }
      return result;
    },
    async replay(filter) {
      const rows = await deps.db.query(q.replayWebhooks, [now(), [...(filter.ids ?? [])], filter.since ?? null]);
      return rows.length;
    },
  };
}
