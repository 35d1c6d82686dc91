// Runs delivery: claims outbox batches, checks consent at dispatch, renders in memory, applies the TLS policy, sends, and records the evidence.
import { randomUUID } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { OutreachError } from '../errors.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import type { Suppressions } from './bounces.js';
import type { DkimSigner } from './dkim.js';
import { composeNotice, type EscrowDesk, type NoticeOptions } from './escrow-notice.js';
import { buildWireMessage, type RenderedMessage } from './mime.js';
import { domainOf } from './mx-resolver.js';
import type { Completion, Outbox, OutboxMessage } from './outbox.js';
import type { Router, RouteAssessment } from './route.js';
import type { TlsEvidence } from './tls-evidence.js';
import type { Tracking } from './tracking.js';
import { decideDelivery } from './tls-policy.js';
import type { SendOutcome, Transport } from './transport.js';

/** The consent engine's answer for one patient, purpose and channel at one instant. */
export interface ConsentDecision {
  allowed: boolean;
  /** The version of the authorization the decision rests on (stored with the message). */
  version?: string | null;
  /** Why not, PHI-free (e.g. 'no marketing authorization', 'opted out of email'). */
  reason?: string;
}

export type ConsentGate = (patientId: string, purpose: string, channel: string, at: Date) => Promise<ConsentDecision>;

export interface DispatcherOptions {
  outbox: Outbox;
  router: Router;
  transport: Transport;
  /** Renders (decrypt, merge) one message in memory at dispatch; the result is never stored. */
  render: (message: OutboxMessage) => Promise<RenderedMessage>;
  isAllowed: ConsentGate;
  /** Addresses and patients that hard-bounced or complained. */
  suppressions?: Suppressions;
  dkim?: DkimSigner;
  /** The escrow portal; without it, a message that needs a notice is held. */
  escrow?: EscrowDesk;
  notice?: NoticeOptions;
  /** Open pixel and click links for delivered HTML (notices are not tracked). */
  tracking?: Pick<Tracking, 'instrument'>;
  /** The signed one-click unsubscribe URL of a message (marketing mail). */
  unsubscribeUrl?: (message: OutboxMessage) => string | undefined;
  /** SMTP envelope sender (bounce address) of a message. */
  envelopeFrom?: (message: OutboxMessage, rendered: RenderedMessage) => string;
  /** Told of every recorded outcome, after it committed (webhooks, metrics); its errors are logged, never thrown. */
  onOutcome?: (message: OutboxMessage, completion: Completion) => void | Promise<void>;
  workerId?: string;
  /** Messages in flight at once in this process. */
  concurrency?: number;
  batchSize?: number;
  /** How long a claim holds; renewed every third of it while the message is in this process (claimed, sending, or its outcome not yet recorded). */
  leaseMs?: number;
  /** Outcomes recorded per transaction. A crash loses at most this many records, whose messages are retried and flagged as possible duplicates. */
  flushSize?: number;
  /** Delay before attempt n+1 (ms); the last value repeats. */
  retryDelaysMs?: readonly number[];
  now?: () => Date;
  log?: Log;
}

export interface DispatchSummary {
  claimed: number;
  delivered: number;
  notices: number;
  held: number;
  retried: number;
  failed: number;
  cancelled: number;
}

const emptySummary = (): DispatchSummary => ({ claimed: 0, delivered: 0, notices: 0, held: 0, retried: 0, failed: 0, cancelled: 0 });

function count(summary: DispatchSummary, state: Completion['state']): void {
  if (state === 'delivered') summary.delivered++;
  else if (state === 'notice_sent') summary.notices++;
  else if (state === 'held') summary.held++;
  else if (state === 'queued') summary.retried++;
  else if (state === 'failed') summary.failed++;
  else if (state === 'cancelled') summary.cancelled++;
}

const defaultRetry = [60_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000];

export class Dispatcher {
  readonly workerId: string;
  private readonly o: Required<Pick<DispatcherOptions, 'concurrency' | 'batchSize' | 'leaseMs' | 'retryDelaysMs' | 'now' | 'log' | 'flushSize'>> & DispatcherOptions;
  private pending: Array<{ message: OutboxMessage; completion: Completion }> = [];
  private flushing: Promise<void> = Promise.resolve();
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private poked = false;
  private stopping = false;
  private readonly routes = new Map<string, Promise<RouteAssessment>>();
  /** Claimed messages whose outcome is not yet recorded: their leases are renewed until it is. */
  private readonly leased = new Set<string>();
  private renewTimer?: NodeJS.Timeout;
  private renewing?: Promise<void>;

  constructor(options: DispatcherOptions) {
    this.workerId = options.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    this.o = {
      concurrency: 8,
      batchSize: 64,
      leaseMs: 120_000,
      flushSize: 50,
      retryDelaysMs: defaultRetry,
      now: () => new Date(),
      log: silentLog,
      ...options,
    };
  }

  /** Claims one batch and processes it to the end; resolves with what happened. */
  async runOnce(): Promise<DispatchSummary> {
    const batch = await this.claim();
    this.routes.clear();
    const summary = emptySummary();
    summary.claimed = batch.length;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.o.concurrency, batch.length) }, async () => {
        while (next < batch.length) count(summary, await this.process(batch[next++]!));
      }),
    );
    await this.flush();
    return summary;
  }

  /**
   * Sends until nothing is due: lanes pull from a local queue that is refilled (claimed) while they work,
   * so the pool never idles between batches.
   */
  async drain(): Promise<DispatchSummary> {
    const summary = emptySummary();
    const queue: OutboxMessage[] = [];
    let exhausted = false;
    let claiming: Promise<void> | undefined;
    const refill = () =>
      (claiming ??= (async () => {
        const batch = await this.claim();
        summary.claimed += batch.length;
        if (batch.length === 0) exhausted = true;
        this.routes.clear();
        queue.push(...batch);
      })().finally(() => (claiming = undefined)));
    const lane = async () => {
      for (;;) {
        // Once stopping, claim nothing new but finish what is claimed (an abandoned claim would look like a crash).
        if (queue.length < this.o.batchSize / 2 && !exhausted && !this.stopping) void refill();
        const message = queue.shift();
        if (message) {
          count(summary, await this.process(message));
          continue;
        }
        if (claiming) {
          await claiming;
          continue;
        }
        if (exhausted || this.stopping) return;
      }
    };
    await refill();
    await Promise.all(Array.from({ length: this.o.concurrency }, lane));
    await this.flush();
    return summary;
  }

  /** Runs in the background until stop(): polls when idle, at most every `idleMs`. */
  start(idleMs = 1000): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.loop = (async () => {
      while (this.running) {
        let s: DispatchSummary | undefined;
        this.poked = false;
        try {
          s = await this.drain();
        } catch (err) {
          this.o.log.error({ err: err as Error, worker: this.workerId }, 'dispatch batch failed');
        }
        // A poke that came while the batch ran means new work: go round again at once.
        if (!s?.claimed && this.running && !this.poked) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, idleMs);
            this.wake = () => (clearTimeout(t), resolve());
          });
        }
      }
    })();
  }

  /** Wakes an idle loop (after an enqueue). */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.wake?.();
    await this.loop;
    await this.flush();
    await this.renewing;
  }

  private async claim(): Promise<OutboxMessage[]> {
    const batch = await this.o.outbox.claim(this.workerId, this.o.batchSize, this.o.leaseMs);
    for (const m of batch) this.leased.add(m.id);
    if (this.leased.size > 0 && !this.renewTimer) {
      this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(10, Math.floor(this.o.leaseMs / 3)));
      this.renewTimer.unref();
    }
    return batch;
  }

  /** Extends the leases of everything this dispatcher still holds; stops the timer when it holds nothing. */
  renewLeases(): Promise<void> {
    if (this.renewing) return this.renewing;
    if (this.leased.size === 0) {
      clearInterval(this.renewTimer);
      this.renewTimer = undefined;
      return Promise.resolve();
    }
    // A message whose lease was lost anyway (a stall longer than the lease) is reported when its outcome is not kept.
    this.renewing = this.o.outbox
      .renewLeases(this.workerId, [...this.leased], this.o.leaseMs)
      .then(
        () => undefined,
        (err: unknown) => this.o.log.error({ err: err as Error, worker: this.workerId }, 'lease renewal failed'),
      )
      .finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private retryAt(message: OutboxMessage): Date {
    const delays = this.o.retryDelaysMs;
    const d = delays[Math.min(message.attempts - 1, delays.length - 1)] ?? 60_000;
    return new Date(this.o.now().getTime() + d);
  }

  private route(domain: string): Promise<RouteAssessment> {
    // One assessment per domain per batch: the probe and MTA-STS caches make repeats cheap, this makes them free.
    let r = this.routes.get(domain);
    if (!r) {
      r = this.o.router.assess(domain);
      r.catch(() => this.routes.delete(domain));
      this.routes.set(domain, r);
    }
    return r;
  }

  private async finish(message: OutboxMessage, completion: Completion): Promise<Completion['state']> {
    this.pending.push({ message, completion });
    if (this.pending.length >= this.o.flushSize) await this.flush();
    return completion.state;
  }

  /** Records the buffered outcomes in one transaction (one at a time, in order). */
  flush(): Promise<void> {
    const items = this.pending;
    if (items.length === 0) return this.flushing;
    this.pending = [];
    this.flushing = this.flushing.then(async () => {
      let kept: boolean[];
      try {
        kept = await this.o.outbox.finishMany(this.workerId, items);
      } finally {
        // Recorded (or to be retried by whoever claims after the lease ends): stop renewing either way.
        for (const { message } of items) this.leased.delete(message.id);
      }
      for (const [i, k] of kept.entries()) {
        const { message, completion } = items[i]!;
        if (!k) {
          this.o.log.warn({ outboxId: message.id, worker: this.workerId }, 'lease lost before the attempt was recorded');
          continue;
        }
        if (this.o.onOutcome) {
          try {
            await this.o.onOutcome(message, completion);
          } catch (err) {
            this.o.log.error({ err: err as Error, outboxId: message.id }, 'outcome listener failed');
          }
        }
      }
    });
    return this.flushing;
  }

  /** One message, start to end. Plaintext exists only inside this call. */
  private async process(message: OutboxMessage): Promise<Completion['state']> {
    const at = this.o.now();
    const log = this.o.log;
    try {
      const consent = await this.o.isAllowed(message.patientId, message.purpose, message.channel, at);
      if (!consent.allowed) {
        return await this.finish(message, { state: 'cancelled', reason: `consent: ${consent.reason ?? 'not authorized'}`, consentVersion: consent.version ?? null });
      }
      const consentVersion = consent.version ?? null;
      const rendered = await this.o.render(message);
      const domain = domainOf(rendered.to);
      const suppressed = await this.o.suppressions?.reasonFor(message.patientId, bareAddress(rendered.to));
      if (suppressed) return await this.finish(message, { state: 'cancelled', reason: `suppressed: ${suppressed}`, consentVersion });
      const backedOff = this.o.transport.backoffUntil(domain);
      if (backedOff > at.getTime()) {
        return await this.finish(message, { state: 'queued', nextAttemptAt: new Date(backedOff), reason: 'domain backed off after 4xx', consentVersion, recipientDomain: domain, refundAttempt: true });
      }
      const route = await this.route(domain);
      const decision = decideDelivery({ mode: message.deliveryMode, phiFree: rendered.phiFree, route });

      if (decision.action === 'hold') {
        if (message.attempts >= message.maxAttempts) {
          return await this.finish(message, { state: 'failed', reason: `TLS_REQUIRED_UNAVAILABLE: ${decision.reason}`, consentVersion, recipientDomain: domain });
        }
        return await this.finish(message, { state: 'held', nextAttemptAt: this.retryAt(message), reason: decision.reason, consentVersion, recipientDomain: domain });
      }

      let outgoing: RenderedMessage = rendered;
      if (decision.action === 'deliver' && rendered.html && this.o.tracking) outgoing = { ...rendered, html: await this.o.tracking.instrument(message, rendered.html) };
      let deliveredAs: 'message' | 'notice' | 'opportunistic' = decision.tls === 'verified' ? 'message' : 'opportunistic';
      if (decision.action === 'notice') {
        if (!this.o.escrow || !this.o.notice) {
          return await this.finish(message, { state: 'held', nextAttemptAt: this.retryAt(message), reason: 'escrow portal not configured', consentVersion, recipientDomain: domain });
        }
        const link = await this.o.escrow.deposit(message, rendered, at);
        outgoing = composeNotice(rendered.to, link, this.o.notice);
        deliveredAs = 'notice';
      }
      const unsubscribeUrl = this.o.unsubscribeUrl?.(message);
      const raw = await buildWireMessage(outgoing, { messageId: message.messageId, ...(unsubscribeUrl ? { unsubscribeUrl } : {}), date: at }, this.o.dkim);
      const outcome: SendOutcome = await this.o.transport.send({
        domain,
        candidate: decision.candidate,
        tls: decision.tls,
        envelope: { from: this.o.envelopeFrom?.(message, outgoing) ?? bareAddress(outgoing.from), to: bareAddress(outgoing.to) },
        raw,
      });
      const evidence: TlsEvidence = {
        ...outcome.peer,
        mx: decision.candidate.mx,
        route: route.relay ? 'relay' : decision.tls,
        mtaSts: decision.candidate.mtaSts,
        dane: decision.candidate.dane,
      };
      if (outcome.status === 'delivered') {
        return await this.finish(message, {
          state: decision.action === 'notice' ? 'notice_sent' : 'delivered', deliveredAs, consentVersion, recipientDomain: domain, evidence, smtpResponse: outcome.response,
        });
      }
      if (outcome.status === 'rejected') {
        return await this.finish(message, { state: 'failed', reason: `SMTP_REJECTED: ${outcome.code}`, consentVersion, recipientDomain: domain, evidence, smtpResponse: outcome.response });
      }
      if (outcome.tlsFailure) {
        // The MX looked fine when probed and failed now: forget the probe so the next attempt decides afresh (notice or hold).
        this.o.router.forget(domain, decision.candidate.mx);
        this.routes.delete(domain);
      }
      if (message.attempts >= message.maxAttempts) {
        return await this.finish(message, { state: 'failed', reason: `gave up after ${message.attempts} attempts: ${outcome.response}`, consentVersion, recipientDomain: domain, evidence, smtpResponse: outcome.response });
      }
      const next = outcome.code && this.o.transport.backoffUntil(domain) > at.getTime() ? new Date(this.o.transport.backoffUntil(domain)) : this.retryAt(message);
      return await this.finish(message, { state: 'queued', nextAttemptAt: next, reason: outcome.response, consentVersion, recipientDomain: domain, evidence, smtpResponse: outcome.response });
    } catch (err) {
      const e = err instanceof OutreachError ? err : undefined;
      const reason = e ? `${e.code}: ${e.message}` : 'INTERNAL: dispatch error';
      log.warn({ outboxId: message.id, code: e?.code ?? 'INTERNAL' }, 'dispatch attempt failed');
      if (e?.code === 'MX_NOT_FOUND' || e?.code === 'BAD_REQUEST' || message.attempts >= message.maxAttempts) {
        return await this.finish(message, { state: 'failed', reason });
      }
      return await this.finish(message, { state: 'queued', nextAttemptAt: this.retryAt(message), reason });
    }
  }
}

/** `Clinic <care@example.org>` → `care@example.org` (the SMTP envelope takes bare addresses). */
export function bareAddress(header: string): string {
  const [first] = addressparser(header) as Array<{ address?: string }>;
  return first?.address || header.trim();
}
