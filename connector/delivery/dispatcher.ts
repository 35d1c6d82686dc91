// Runs delivery: claims outbox batches, checks consent at dispatch, renders in memory, applies the TLS policy, sends, and records the evidence.
import { randomUUID } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { OutreachError } from '../errors.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import type { Queryable } from '../store/db.js';
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

/** The gate for many messages in one look-up; answers in the order asked. */
export type ConsentGateMany = (requests: ReadonlyArray<Pick<OutboxMessage, 'patientId' | 'purpose' | 'channel'>>, at: Date) => Promise<ConsentDecision[]>;

/** One message's render: the message, or why it cannot be rendered (an OutreachError BAD_REQUEST fails it at once). */
export type RenderResult = { ok: RenderedMessage } | { error: unknown };

export interface DispatcherOptions {
  outbox: Outbox;
  router: Router;
  transport: Transport;
  /** Renders (decrypt, merge) one message in memory at dispatch; the result is never stored. */
  render: (message: OutboxMessage) => Promise<RenderedMessage>;
  /** Renders many messages with one facts read; answers in the order given (default: `render` one by one). */
  renderMany?: (messages: readonly OutboxMessage[]) => Promise<RenderResult[]>;
  isAllowed: ConsentGate;
  /** The gate over a chunk of claimed messages in one look-up (default: `isAllowed` one by one). */
  isAllowedMany?: ConsentGateMany;
  /** A consent decision older than this when its message is sent is taken again, alone (default 2,000 ms). */
  maxGateAgeMs?: number;
  /** Claimed messages are gated, rendered and checked against suppressions this many at a time (default 100). */
  prepareSize?: number;
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
  /** Told of every recorded outcome, after it committed (metrics); its errors are logged, never thrown. */
  onOutcome?: (message: OutboxMessage, completion: Completion) => void | Promise<void>;
  /** Writes rows that must commit with the outcomes they describe (webhook events), inside the outcomes' transaction. */
  recordWithOutcomes?: (tx: Queryable, recorded: ReadonlyArray<{ message: OutboxMessage; completion: Completion }>) => Promise<void>;
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

/** A claimed message made ready to send: consent decided, rendered in memory, suppressions checked. */
interface Prepared {
  message: OutboxMessage;
  consent: ConsentDecision;
  /** Epoch ms of the consent decision. */
  gatedAt: number;
  /** Absent when consent denied it (nothing was rendered). */
  rendered?: RenderResult;
  suppressed?: string;
  /** The chunk's look-ups failed: the message is retried later. */
  failure?: unknown;
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
  private readonly o: Required<Pick<DispatcherOptions, 'concurrency' | 'batchSize' | 'leaseMs' | 'retryDelaysMs' | 'now' | 'log' | 'flushSize' | 'maxGateAgeMs' | 'prepareSize'>> & DispatcherOptions;
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
      batchSize: 256,
      leaseMs: 120_000,
      flushSize: 50,
      maxGateAgeMs: 2000,
      prepareSize: 100,
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
    const items: Prepared[] = [];
    for (let i = 0; i < batch.length; i += this.o.prepareSize) items.push(...(await this.prepare(batch.slice(i, i + this.o.prepareSize))));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.o.concurrency, items.length) }, async () => {
        while (next < items.length) count(summary, await this.process(items[next++]!));
      }),
    );
    await this.flush();
    return summary;
  }

  /**
   * Sends until nothing is due. Lanes take prepared messages from a local queue; the next batch is
   * claimed and prepared (a chunk at a time: one consent look-up, one facts read, one suppression
   * look-up per chunk) while they send, so the pool never idles between batches.
   */
  async drain(): Promise<DispatchSummary> {
    const summary = emptySummary();
    const ready: Prepared[] = [];
    let exhausted = false;
    let failure: unknown;
    let filling: Promise<void> | undefined;
    let waiting: Array<() => void> = [];
    const notify = () => {
      const w = waiting;
      waiting = [];
      for (const wake of w) wake();
    };
    const fill = () =>
      (filling ??= (async () => {
        try {
          const batch = await this.claim();
          summary.claimed += batch.length;
          if (batch.length === 0) exhausted = true;
          this.routes.clear();
          for (let i = 0; i < batch.length; i += this.o.prepareSize) {
            ready.push(...(await this.prepare(batch.slice(i, i + this.o.prepareSize))));
            notify();
          }
        } catch (err) {
          // A claim that failed: stop claiming, finish what is here, and report it.
          failure = err;
          exhausted = true;
        }
      })().finally(() => {
        filling = undefined;
        notify();
      }));
    const lane = async () => {
      for (;;) {
        // Once stopping, claim nothing new but finish what is claimed (an abandoned claim would look like a crash).
        if (!filling && ready.length < this.o.batchSize / 2 && !exhausted && !this.stopping) void fill();
        const item = ready.shift();
        if (item) {
          count(summary, await this.process(item));
          continue;
        }
        if (filling) {
          await new Promise<void>((resolve) => waiting.push(resolve));
          continue;
        }
        if (exhausted || this.stopping) return;
      }
    };
    // Lanes start at once and take the first chunk as soon as it is prepared.
    void fill();
    await Promise.all(Array.from({ length: this.o.concurrency }, lane));
    await this.flush();
    if (failure) throw failure;
    return summary;
  }

  /** Gates a chunk of claimed messages, renders the allowed ones and checks them against suppressions, a few statements in all. */
  private async prepare(chunk: readonly OutboxMessage[]): Promise<Prepared[]> {
    const at = this.o.now();
    const gatedAt = at.getTime();
    try {
      const decisions = this.o.isAllowedMany
        ? await this.o.isAllowedMany(chunk, at)
        : await Promise.all(chunk.map((m) => this.o.isAllowed(m.patientId, m.purpose, m.channel, at)));
      const items: Prepared[] = chunk.map((message, i) => ({ message, consent: decisions[i]!, gatedAt }));
      const allowed = items.filter((it) => it.consent.allowed);
      const rendered = this.o.renderMany
        ? await this.o.renderMany(allowed.map((it) => it.message))
        : await Promise.all(allowed.map((it) => this.o.render(it.message).then((ok): RenderResult => ({ ok }), (error: unknown): RenderResult => ({ error }))));
      allowed.forEach((it, i) => (it.rendered = rendered[i]!));
      const addressed = allowed.flatMap((it) => (it.rendered && 'ok' in it.rendered ? [{ it, address: bareAddress(it.rendered.ok.to) }] : []));
      const suppressions = this.o.suppressions;
      if (suppressions && addressed.length) {
        const reasons = suppressions.reasonsFor
          ? await suppressions.reasonsFor(addressed.map(({ it, address }) => ({ patientId: it.message.patientId, address })))
          : await Promise.all(addressed.map(({ it, address }) => suppressions.reasonFor(it.message.patientId, address)));
        addressed.forEach(({ it }, i) => (it.suppressed = reasons[i]));
      }
      return items;
    } catch (failure) {
      return chunk.map((message) => ({ message, consent: { allowed: false }, gatedAt, failure }));
    }
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

  /** Records the buffered outcomes in one transaction (one at a time, in order); never rejects. */
  flush(): Promise<void> {
    const items = this.pending;
    if (items.length === 0) return this.flushing;
    this.pending = [];
    this.flushing = this.flushing.then(async () => {
      let kept: boolean[];
      try {
        kept = await this.o.outbox.finishMany(this.workerId, items, this.o.recordWithOutcomes);
      } catch (err) {
        // The store failed: these messages stay claimed and go again once their leases end (flagged as possible
        // duplicates). Later flushes still run: one failure must not stop this dispatcher recording anything.
        this.o.log.error({ err: err as Error, worker: this.workerId, messages: items.length }, 'outcomes not recorded; the messages are retried when their leases end');
        return;
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

  /** One prepared message, to its outcome. Its plaintext lives only in memory, from prepare() to the end of this call. */
  private async process(item: Prepared): Promise<Completion['state']> {
    const { message } = item;
    const at = this.o.now();
    const log = this.o.log;
    try {
      if (item.failure) throw item.failure;
      // The decision was taken when the chunk was prepared; a stale one is taken again so a revocation stops mail within seconds.
      const consent = at.getTime() - item.gatedAt > this.o.maxGateAgeMs ? await this.o.isAllowed(message.patientId, message.purpose, message.channel, at) : item.consent;
      if (!consent.allowed) {
        return await this.finish(message, { state: 'cancelled', reason: `consent: ${consent.reason ?? 'not authorized'}`, consentVersion: consent.version ?? null });
      }
      const consentVersion = consent.version ?? null;
      // Allowed now but denied when prepared: render it now.
      const result = item.rendered ?? (await this.o.render(message).then((ok): RenderResult => ({ ok }), (error: unknown): RenderResult => ({ error })));
      if ('error' in result) throw result.error;
      const rendered = result.ok;
      const domain = domainOf(rendered.to);
      const suppressed = item.rendered ? item.suppressed : await this.o.suppressions?.reasonFor(message.patientId, bareAddress(rendered.to));
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
      const raw = await buildWireMessage(outgoing, { messageId: message.messageId, ...(unsubscribeUrl ? { unsubscribeUrl } : {}), date: at });
      // Signed by the transport at the wire, on the thread that sends it.
      const dkim = await this.o.dkim?.key();
      const outcome: SendOutcome = await this.o.transport.send({
        domain,
        candidate: decision.candidate,
        tls: decision.tls,
        envelope: { from: this.o.envelopeFrom?.(message, outgoing) ?? bareAddress(outgoing.from), to: bareAddress(outgoing.to) },
        raw,
        ...(dkim ? { dkim } : {}),
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
