// The send pipeline built from the app: delivery (through the delivery service), DKIM, escrow portal, consent gate, a render that opens a patient's facts in memory, webhooks and the bounce listener; plus campaigns and one-off sends.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { App } from '../app.js';
import { CampaignService, type TemplateRef } from '../campaigns/campaign-service.js';
import { assessRecipients, type ExclusionReason } from '../campaigns/recipients.js';
import { compileTemplate, type CompiledTemplate } from '../compose/render.js';
import type { MergeContext, PracticeContext, SenderContext } from '../compose/merge-tags.js';
import { TemplateStore } from '../compose/template-store.js';
import { isPurpose, type Purpose } from '../consent/purposes.js';
import { createFeedbackProcessor, startBounceListener, type FeedbackProcessor } from '../delivery/bounces.js';
import { cancelOnRevocation, consentGate, consentGateMany } from '../delivery/consent-link.js';
import { createDeliveryEvents } from '../delivery/delivery-events.js';
import { createDeliveryService } from '../delivery/delivery-service.js';
import type { DkimSigner } from '../delivery/dkim.js';
import type { DnsLookup } from '../delivery/dns-client.js';
import type { Dispatcher, DispatchSummary, RenderResult } from '../delivery/dispatcher.js';
import type { EscrowDesk } from '../delivery/escrow-notice.js';
import { buildWireMessage, type RenderedMessage } from '../delivery/mime.js';
import { domainOf, type ConnectTargetMap } from '../delivery/mx-resolver.js';
import type { Outbox, OutboxMessage } from '../delivery/outbox.js';
import type { Router } from '../delivery/route.js';
import { decideDelivery, type DeliveryMode } from '../delivery/tls-policy.js';
import type { Transport } from '../delivery/transport.js';
import { createTracking, type Tracking } from '../delivery/tracking.js';
import { loadExtraCa } from '../delivery/trust.js';
import { createUnsubscribeTokens, type UnsubscribeTokens } from '../delivery/unsubscribe.js';
import { createWebhooks, type Webhooks } from '../delivery/webhooks.js';
import { fail } from '../errors.js';
import { createEscrowPortal, type EscrowPortal } from '../portal/escrow-portal.js';
import type { FieldCipher } from '../store/cipher.js';
import { SegmentRepository } from '../segments/segment-repository.js';
import { SegmentService } from '../segments/segment-service.js';
import { authorize, type Session } from '../users/authorize.js';
import { phi, reveal } from '../../fhir/phi.js';
import { DkimKeyStore } from './dkim-keys.js';

export interface SendingOptions {
  /** The From address and name; default: the first verified sender of the directory (else the first sender). */
  sender?: { address: string; displayName?: string; dkimSelector?: string };
  /** DNS for MX, MTA-STS and TLSA (default: config.dnsServers or the system resolver). */
  dns?: DnsLookup;
  /** Where to connect for a host name (default: its A record, port 25/443); tests map MX names to loopback sinks. */
  connectTarget?: ConnectTargetMap;
  /** Extra trusted CAs, added to Node's roots and config.extraCaFile. */
  ca?: readonly string[];
  /** The DKIM signer; default: the stored key of the sender's domain and selector. `null` sends unsigned. */
  dkim?: DkimSigner | null;
  /** Base URL of the escrow portal and unsubscribe links (default config.publicUrl); without it notices are held. */
  publicUrl?: string;
  practice?: Partial<PracticeContext>;
  workerId?: string;
  concurrency?: number;
  batchSize?: number;
  leaseMs?: number;
  retryDelaysMs?: readonly number[];
  /** Per-MX probe cache (default 1 hour for a success). */
  probeTtlMs?: number;
  timeoutMs?: number;
  /** Webhook endpoints and secret (default config.webhookUrls and config.webhookSecret); none: no events are queued. */
  webhooks?: { urls: readonly string[]; secret: string; retryDelaysMs?: readonly number[] };
  /** The bounce listener (default config.bouncePort/bounceHost); `null` never starts one. Port 0 picks a free port. */
  bounces?: { port: number; host?: string } | null;
  /** The SMTP envelope sender whose domain's MX reaches the bounce listener (default config.bounceAddress, else the sender). */
  bounceAddress?: string;
  now?: () => Date;
}

export interface SendOneInput {
  template: TemplateRef;
  audience: { kind: 'contact'; crmId: string } | { kind: 'contact'; patientId: number };
  purpose: string;
  deliveryMode: DeliveryMode;
}

export interface SendOneResult {
  /** The outbox row id (the message), or the exclusion reference when nothing was queued. */
  messageId: string;
  status: 'queued' | 'held' | 'suppressed';
  reason: string | null;
}

export interface SendingService {
  outbox: Outbox;
  router: Router;
  transport: Transport;
  dispatcher: Dispatcher;
  campaigns: CampaignService;
  templates: TemplateStore;
  segments: SegmentService;
  dkimKeys: DkimKeyStore;
  /** The escrow portal, when a public URL is configured. */
  escrow: EscrowPortal | undefined;
  unsubscribeTokens: UnsubscribeTokens;
  /** Open and click tracking of the HTML part (opaque tokens, targets sealed), when a public URL is configured. */
  tracking: Tracking | undefined;
  /** Reads DSN and ARF reports: suppresses on a hard bounce or complaint, retries a soft bounce (the bounce listener's processor). */
  feedback: FeedbackProcessor;
  /** Signed webhook deliveries, when endpoints are configured (replay goes through here). */
  webhooks: Webhooks | undefined;
  /** Queues webhook events for opens, clicks, bounces and complaints recorded since the last call, then posts what is due. */
  runWebhooks(): Promise<{ queued: number; delivered: number; retrying: number; failed: number }>;
  /** Starts the bounce listener (once; start() does this when one is configured) and resolves with its port. */
  listenForBounces(): Promise<{ port: number }>;
  /** The From address in use (INVALID_CONFIG until an admin adds a sender). */
  sender(): Promise<SenderContext>;
  /** Queues due campaigns, then sends until nothing is due, then marks finished campaigns sent. */
  drainOnce(): Promise<DispatchSummary & { campaignsQueued: number; campaignsSent: string[] }>;
  /** Runs in the background until stop(): campaign runs, the dispatcher, webhooks, and the bounce listener when configured. */
  start(idleMs?: number): void;
  stop(): Promise<void>;
  /** A one-off to one contact under the same approval, consent and TLS rules. */
  sendOne(session: Session | null | undefined, input: SendOneInput): Promise<SendOneResult>;
  close(): Promise<void>;
}

/** The unsubscribe token key, derived from the keyring's index key: every process of one store issues and opens the same tokens. */
export function unsubscribeTokensOf(cipher: Pick<FieldCipher, 'blindIndex'>): UnsubscribeTokens {
  return createUnsubscribeTokens(createHash('sha256').update(cipher.blindIndex('unsubscribe-token-key', 'v1')).digest());
}

interface SenderChoice {
  address: string;
  displayName: string;
  dkimSelector?: string;
}

async function findSender(app: App, option: SendingOptions['sender']): Promise<SenderChoice | undefined> {
  if (option) return { address: option.address.trim().toLowerCase(), displayName: option.displayName ?? '', ...(option.dkimSelector ? { dkimSelector: option.dkimSelector } : {}) };
  const senders = await app.senders.list();
  const chosen = senders.find((s) => s.verified) ?? senders[0];
  return chosen && { address: chosen.address, displayName: chosen.displayName, ...(chosen.dkimSelector ? { dkimSelector: chosen.dkimSelector } : {}) };
}

const domainPart = (address: string) => address.slice(address.lastIndexOf('@') + 1);
const quotedName = (name: string) => `"${name.replace(/["<>@\\\r\n]/g, ' ')}"`;

export async function createSendingService(app: App, options: SendingOptions = {}): Promise<SendingService> {
  const config = app.config;
  const now = options.now ?? (() => new Date());
  const log = app.log.child({ component: 'sending' });
  // The service runs without a sender (campaigns can be drafted and approved); sending waits until an admin adds one.
  const initial = await findSender(app, options.sender);
  const initialDomain = initial ? domainPart(initial.address) : undefined;
  const practice: PracticeContext = {
    name: options.practice?.name ?? config.practiceName ?? (initial?.displayName || initialDomain || 'Our practice'),
    ...((options.practice?.phone ?? config.practicePhone) ? { phone: options.practice?.phone ?? config.practicePhone } : {}),
    ...((options.practice?.address ?? config.practiceAddress) ? { address: options.practice?.address ?? config.practiceAddress } : {}),
    ...((options.practice?.timeZone ?? config.practiceTimeZone) ? { timeZone: options.practice?.timeZone ?? config.practiceTimeZone } : {}),
    ...(options.practice?.website ? { website: options.practice.website } : {}),
  };
  const heloName = config.heloName ?? initialDomain ?? 'localhost';
  const dkimKeys = new DkimKeyStore({ db: app.db, cipher: app.cipher });
  let current: { context: SenderContext; dkim: DkimSigner | undefined } | undefined;
  const senderNow = async () => {
    if (current) return current;
    const found = await findSender(app, options.sender);
    if (!found) throw fail('INVALID_CONFIG', 'no sender address: an admin adds one (POST /senders) before anything can be sent', { field: 'sender' });
    const domain = domainPart(found.address);
    const dkim = options.dkim === null ? undefined : (options.dkim ?? (found.dkimSelector ? await dkimKeys.signer(domain, found.dkimSelector) : undefined));
    if (!dkim) log.warn({ domain }, 'no DKIM key for the sender domain: messages go unsigned');
    current = { context: { address: found.address, verifiedDomain: domain, displayName: found.displayName || practice.name }, dkim };
    return current;
  };
  // Signs with the sender's key once one is known (resolved before the first message is built).
  const dkim: DkimSigner = {
    get domainName() {
      return current?.dkim?.domainName ?? '';
    },
    get keySelector() {
      return current?.dkim?.keySelector ?? '';
    },
    sign: async (raw) => {
      const signer = (await senderNow()).dkim;
      return signer ? signer.sign(raw) : raw;
    },
    key: async () => (await senderNow()).dkim?.key(),
  };

  const templates = new TemplateStore(app.db);
  const segmentRepository = new SegmentRepository(app.db);
  const segments = new SegmentService({
    index: async () => (await app.segmentIndex()).index,
    repository: segmentRepository,
    audit: (entries) => app.audit.append(entries),
    clock: now,
  });
  const publicUrl = options.publicUrl ?? config.publicUrl;
  const unsubscribeTokens = unsubscribeTokensOf(app.cipher);
  const tracking = publicUrl ? createTracking({ db: app.db, cipher: app.cipher, publicUrl, now }) : undefined;
  const unsubscribeUrl = (m: OutboxMessage) =>
    publicUrl
      ? `${publicUrl.replace(/\/$/, '')}/u/${unsubscribeTokens.issue({ patientId: m.patientId, campaignId: m.campaignId, purpose: m.purpose, channel: m.channel })}`
      : undefined;

  /** A PHI-free message straight through the TLS policy (the portal's one-time codes). */
  const sendDirect = async (to: string, subject: string, text: string) => {
    const domain = domainOf(to);
    const decision = decideDelivery({ mode: 'tls-or-escrow', phiFree: true, route: await delivery.router.assess(domain) });
    if (decision.action !== 'deliver') throw fail('TLS_REQUIRED_UNAVAILABLE', 'the recipient domain cannot take mail now');
    const sender = (await senderNow()).context;
    const raw = await buildWireMessage(
      { from: `${quotedName(practice.name)} <${sender.address}>`, to, subject, text, phiFree: true },
      { messageId: `<${randomUUID()}@${sender.verifiedDomain}>`, date: now() },
      dkim,
    );
    const outcome = await delivery.transport.send({ domain, candidate: decision.candidate, tls: decision.tls, envelope: { from: sender.address, to }, raw });
    if (outcome.status !== 'delivered') throw fail('SMTP_REJECTED', `the code could not be delivered (${outcome.status})`);
  };
  const escrow: EscrowPortal | undefined = publicUrl
    ? createEscrowPortal({
        db: app.db,
        cipher: app.cipher,
        audit: app.audit,
        publicUrl,
        now,
        birthDateOf: async (patientId) => {
          const facts = (await app.facts.readFacts([Number(patientId)])).get(Number(patientId));
          return facts?.birthDate ? phi(String(facts.birthDate)) : undefined;
        },
        deliverCode: (address, code) =>
          sendDirect(reveal(address), `Your one-time code from ${practice.name}`, `Your one-time code is ${code}. It works for 10 minutes. If you did not ask for it, ignore this email.`),
      })
    : undefined;
  if (!escrow) log.warn({}, 'no public URL: escrow notices cannot be sent and such messages are held');

  const compiled = new Map<number, Promise<CompiledTemplate>>();
  const compiledFor = (versionId: number) => {
    let c = compiled.get(versionId);
    if (!c) {
      c = templates.getVersion(versionId).then((v) => compileTemplate(v.content));
      c.catch(() => compiled.delete(versionId));
      compiled.set(versionId, c);
    }
    return c;
  };

  // A campaign's standing approval, re-read at most once a second per campaign: a withdrawal stops claimed messages too.
  const approvals = new Map<string, { at: number; ok: Promise<boolean> }>();
  const dispatchable = (campaignKey: string): Promise<boolean> => {
    const hit = approvals.get(campaignKey);
    const t = Date.now();
    if (hit && t - hit.at < 1000) return hit.ok;
    const ok = campaigns.mayDispatch(campaignKey);
    approvals.set(campaignKey, { at: t, ok });
    ok.catch(() => approvals.delete(campaignKey));
    return ok;
  };

  /**
   * Opens the patients' facts (one read for the chunk) and merges them in memory; the results live only
   * until they are sent. Links become opaque click tokens and an open pixel is added (one insert for the chunk).
   */
  const renderMany = async (messages: readonly OutboxMessage[]): Promise<RenderResult[]> => {
    if (messages.length === 0) return [];
    const all = await app.facts.readFacts([...new Set(messages.map((m) => Number(m.patientId)))]);
    const sender = (await senderNow()).context;
    const composed = await Promise.all(
      messages.map(async (m): Promise<{ message: OutboxMessage; to: string; composed: ReturnType<CompiledTemplate['render']> } | { error: unknown }> => {
        try {
          const facts = all.get(Number(m.patientId));
          // BAD_REQUEST fails the message at once (no retry): these do not heal by waiting.
          if (!facts) throw fail('BAD_REQUEST', 'the recipient is no longer in the store');
          if (facts.deceased) throw fail('BAD_REQUEST', 'the recipient is deceased');
          if (!facts.email) throw fail('BAD_REQUEST', 'the recipient has no email address');
          if (!(await dispatchable(m.campaignId))) throw fail('BAD_REQUEST', 'the campaign approval was withdrawn or the campaign stopped');
          const template = await compiledFor(m.templateVersion);
          const link = unsubscribeUrl(m);
          const context: MergeContext & { deliveryMode: DeliveryMode } = {
            practice, sender, now: now(), deliveryMode: m.deliveryMode, ...(link ? { links: { unsubscribe: link } } : {}),
          };
          return { message: m, to: String(facts.email).trim(), composed: template.render(facts, context) };
        } catch (error) {
          return { error };
        }
      }),
    );
    const tracked = composed.flatMap((c) => ('composed' in c && c.composed.html ? [{ message: c.message, html: reveal(c.composed.html) }] : []));
    const instrumented = tracking && tracked.length ? await tracking.instrumentMany(tracked) : tracked.map((t) => t.html);
    let next = 0;
    return composed.map((c): RenderResult => {
      if (!('composed' in c)) return { error: c.error };
      const html = c.composed.html ? instrumented[next++]! : undefined;
      return {
        ok: { from: reveal(c.composed.from), to: c.to, subject: c.composed.subject, text: reveal(c.composed.text), ...(html ? { html } : {}), phiFree: c.composed.phiFree },
      };
    });
  };
  const render = async (m: OutboxMessage): Promise<RenderedMessage> => {
    const [result] = await renderMany([m]);
    if ('error' in result!) throw result.error;
    return result!.ok;
  };

  const webhookUrls = options.webhooks?.urls ?? config.webhookUrls;
  const webhookSecret = options.webhooks?.secret ?? config.webhookSecret;
  if (webhookUrls.length > 0 && !webhookSecret) throw fail('INVALID_CONFIG', 'webhook URLs need a webhook secret', { field: 'webhookSecret' });
  const webhooks = webhookUrls.length
    ? createWebhooks({ db: app.db, endpoints: webhookUrls, secret: webhookSecret!, ca: [...loadExtraCa(config.extraCaFile), ...(options.ca ?? [])], now, ...(options.webhooks?.retryDelaysMs ? { retryDelaysMs: options.webhooks.retryDelaysMs } : {}) })
    : undefined;
  const events = webhooks ? createDeliveryEvents({ db: app.db, webhooks, log }) : undefined;
  const feedback = createFeedbackProcessor({ db: app.db, cipher: app.cipher, now, log });

  // The one construction path of the delivery parts (router, transport, outbox, dispatcher).
  const delivery = createDeliveryService({
    config,
    db: app.db,
    heloName,
    messageIdDomain: initialDomain ?? heloName,
    ...(options.dns ? { dns: options.dns } : {}),
    ...(options.connectTarget ? { connectTarget: options.connectTarget } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.probeTtlMs ? { probeTtlMs: options.probeTtlMs } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    render,
    renderMany,
    isAllowed: consentGate(app.consent),
    isAllowedMany: consentGateMany(app.consent),
    suppressions: feedback,
    dkim,
    ...(escrow
      ? {
          escrow: escrow as EscrowDesk,
          // Read when a notice is composed, after render resolved the sender.
          notice: {
            senderName: practice.name,
            get from() {
              return `${quotedName(practice.name)} <${current?.context.address ?? ''}>`;
            },
          },
        }
      : {}),
    unsubscribeUrl,
    envelopeFrom: () => options.bounceAddress ?? config.bounceAddress ?? current!.context.address,
    // Outcome events commit with the outcomes: a crash between the two cannot lose a webhook.
    ...(events ? { recordWithOutcomes: events.record } : {}),
    ...(options.workerId ? { workerId: options.workerId } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
    ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
    now,
    log,
  });
  const { outbox, router, transport, dispatcher } = delivery;

  const campaigns = new CampaignService({
    db: app.db,
    cipher: app.cipher,
    audit: app.audit,
    templates,
    segments,
    segmentVersions: segmentRepository,
    facts: app.facts,
    consent: app.consent,
    outbox,
    router,
    onQueued: () => dispatcher.poke(),
    clock: now,
    log,
  });

  // A revocation cancels queued mail the moment it commits; the gate at dispatch catches what was already claimed.
  const offRevocation = cancelOnRevocation(app.consent, outbox);
  // One-click unsubscribes (recorded by the public pages of this process) become webhook events.
  const offUnsubscribe = events ? app.consent.onConsentChanged((changes) => events.consentChanged(changes)) : undefined;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  const bounceConfig = options.bounces === null ? undefined : (options.bounces ?? (config.bouncePort !== undefined ? { port: config.bouncePort, host: config.bounceHost } : undefined));
  let bounceListener: Promise<{ port: number; close: () => Promise<void> }> | undefined;
  const listenForBounces = async () => {
    if (!bounceConfig) throw fail('INVALID_CONFIG', 'no bounce listener is configured (OUTREACH_BOUNCE_PORT)', { field: 'bouncePort' });
    if (!bounceListener) {
      // The listener offers STARTTLS with the API certificate when there is one: reports quote headers of sent mail.
      const tls = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert, 'utf8'), key: readFileSync(config.tlsKey, 'utf8') } : {};
      const started = startBounceListener({ processor: feedback, port: bounceConfig.port, host: bounceConfig.host ?? config.bounceHost, log, ...tls });
      bounceListener = started;
      started.then(
        (l) => log.info({ port: l.port }, 'bounce listener running'),
        () => (bounceListener = undefined),
      );
    }
    const { port } = await bounceListener;
    return { port };
  };
  const closeBounces = async () => {
    const listener = bounceListener;
    bounceListener = undefined;
    await (await listener?.catch(() => undefined))?.close();
  };

  const runWebhooks = async () => {
    if (!webhooks || !events) return { queued: 0, delivered: 0, retrying: 0, failed: 0 };
    const queued = await events.pump();
    return { queued, ...(await webhooks.runDue()) };
  };

  const stop = async () => {
    running = false;
    wake?.();
    await loop;
    await dispatcher.flush();
    await closeBounces();
  };

  const drainOnce = async () => {
    const runs = await campaigns.runDue();
    const summary = await dispatcher.drain();
    const campaignsSent = await campaigns.completeFinished();
    return { ...summary, campaignsQueued: runs.filter((r) => r.report).length, campaignsSent };
  };

  return {
    outbox, router, transport, dispatcher, campaigns, templates, segments, dkimKeys, escrow, unsubscribeTokens,
    tracking, feedback, webhooks, runWebhooks, listenForBounces,
    sender: async () => (await senderNow()).context,
    drainOnce,
    start(idleMs = 1000) {
      if (running) return;
      running = true;
      if (bounceConfig) listenForBounces().catch((err: unknown) => log.error({ err: err as Error }, 'bounce listener not started'));
      loop = (async () => {
        while (running) {
          let worked = false;
          try {
            const s = await drainOnce();
            worked = s.claimed > 0 || s.campaignsQueued > 0;
          } catch (err) {
            log.error({ err: err as Error }, 'send loop failed');
          }
          try {
            // Outcomes were queued as they committed; opens, clicks and bounces are read back here, then everything due is posted.
            const h = await runWebhooks();
            worked ||= h.delivered + h.retrying + h.failed >= 100;
          } catch (err) {
            log.error({ err: err as Error }, 'webhook run failed');
          }
          if (!worked && running) {
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, idleMs);
              wake = () => (clearTimeout(t), resolve());
            });
          }
        }
      })();
    },
    stop,
    async sendOne(session, input) {
      const who = authorize(session, 'campaigns.send', now());
      if (!isPurpose(input.purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
      const purpose: Purpose = input.purpose;
      const version = await campaigns.resolveTemplate(input.template);
      if (!version.deliveryModes.includes(input.deliveryMode)) {
        throw fail('DELIVERY_MODE_NOT_ALLOWED', `this template needs delivery mode ${version.deliveryModes.join(' or ')}, not ${input.deliveryMode}`, { field: 'deliveryMode' });
      }
      // Personal content goes out only as a clinician approved it: a PHI template needs an approval of this version, purpose and mode.
      if (version.phiClass !== 'none' && !(await campaigns.approvedContent(version.versionId, purpose, input.deliveryMode))) {
        throw fail('APPROVAL_VOID', 'no clinician approval covers this template version for this purpose and delivery mode', { field: 'templateId' });
      }
      let patientId: number;
      if ('patientId' in input.audience) patientId = input.audience.patientId;
      else {
        const ids = await app.facts.findByCrmId(input.audience.crmId);
        if (ids.length !== 1) throw fail(ids.length ? 'CONFLICT' : 'NOT_FOUND', ids.length ? 'more than one patient is linked to this CRM record' : 'no patient is linked to this CRM record', { field: 'crmId' });
        patientId = ids[0]!;
      }
      const at = now();
      const oneOff = `one-off/${randomUUID()}`;
      const assessed = await assessRecipients({ db: app.db, cipher: app.cipher, facts: app.facts, consent: app.consent }, { patientIds: [patientId], purpose, at });
      const reason = (Object.entries(assessed.excluded) as Array<[ExclusionReason, number]>).find(([, n]) => n > 0)?.[0];
      await app.audit.append({ actor: who.username, role: who.role, action: 'message.send', purpose, patientId, entity: oneOff, outcome: reason ? 'denied' : 'success', at });
      if (reason) return { messageId: oneOff.replace('/', ':'), status: 'suppressed', reason };
      await outbox.enqueue([{ campaignId: oneOff, templateVersion: version.versionId, patientId: String(patientId), purpose, deliveryMode: input.deliveryMode, idempotencyKey: oneOff }]);
      const queued = await outbox.byIdempotencyKey(oneOff);
      dispatcher.poke();
      wake?.();
      return { messageId: queued!.id, status: 'queued', reason: null };
    },
    async close() {
      offRevocation();
      offUnsubscribe?.();
      if (running) await stop();
      await closeBounces();
      await delivery.close();
    },
  };
}
