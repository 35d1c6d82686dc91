// The send pipeline built from the app: router, transport, DKIM, escrow portal, consent gate and the dispatcher whose render opens a patient's facts in memory; plus the campaign service and one-off sends.
import { createHash, randomUUID } from 'node:crypto';
import type { App } from '../app.js';
import { CampaignService, type TemplateRef } from '../campaigns/campaign-service.js';
import { assessRecipients, type ExclusionReason } from '../campaigns/recipients.js';
import { compileTemplate, type CompiledTemplate } from '../compose/render.js';
import type { MergeContext, PracticeContext, SenderContext } from '../compose/merge-tags.js';
import { TemplateStore } from '../compose/template-store.js';
import { isPurpose, type Purpose } from '../consent/purposes.js';
import { createFeedbackProcessor } from '../delivery/bounces.js';
import { cancelOnRevocation, consentGate } from '../delivery/consent-link.js';
import type { DkimSigner } from '../delivery/dkim.js';
import { createDnsLookup, type DnsLookup } from '../delivery/dns-client.js';
import { Dispatcher, type DispatchSummary } from '../delivery/dispatcher.js';
import type { EscrowDesk } from '../delivery/escrow-notice.js';
import { buildWireMessage, type RenderedMessage } from '../delivery/mime.js';
import { createMtaSts } from '../delivery/mta-sts.js';
import { createMxResolver, dnsConnectTarget, domainOf, type ConnectTargetMap } from '../delivery/mx-resolver.js';
import { createOutbox, type Outbox, type OutboxMessage } from '../delivery/outbox.js';
import { createDirectRouter, createRelayRouter, type Router } from '../delivery/route.js';
import { createStarttlsProbe } from '../delivery/starttls-probe.js';
import { decideDelivery, type DeliveryMode } from '../delivery/tls-policy.js';
import { createTransport, parseRelayUrl, type Transport } from '../delivery/transport.js';
import { createTracking, type Tracking } from '../delivery/tracking.js';
import { loadExtraCa } from '../delivery/trust.js';
import { createUnsubscribeTokens, type UnsubscribeTokens } from '../delivery/unsubscribe.js';
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
  /** The From address in use (INVALID_CONFIG until an admin adds a sender). */
  sender(): Promise<SenderContext>;
  /** Queues due campaigns, then sends until nothing is due, then marks finished campaigns sent. */
  drainOnce(): Promise<DispatchSummary & { campaignsQueued: number; campaignsSent: string[] }>;
  /** Runs in the background (campaign runs and the dispatcher) until stop(). */
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
  const ca = [...loadExtraCa(config.extraCaFile), ...(options.ca ?? [])];
  const dns = options.dns ?? createDnsLookup(config.dnsServers);
  const connectTarget = options.connectTarget ?? dnsConnectTarget(dns);
  const relay = config.smtpRelayUrl ? parseRelayUrl(config.smtpRelayUrl) : undefined;
  const router: Router = relay
    ? createRelayRouter({ host: relay.host, target: { host: relay.host, port: relay.port } })
    : createDirectRouter({
        dns,
        mxResolver: createMxResolver(dns),
        mtaSts: createMtaSts({ dns, connectTarget, ca, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) }),
        probe: createStarttlsProbe({ heloName, ca, ...(options.probeTtlMs ? { ttlMs: options.probeTtlMs } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) }),
        connectTarget,
      });
  const transport = createTransport({ heloName, ca, log, ...(relay ? { relay } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
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
  };

  const outbox = createOutbox(app.db, { messageIdDomain: initialDomain ?? heloName, now });
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
    const decision = decideDelivery({ mode: 'tls-or-escrow', phiFree: true, route: await router.assess(domain) });
    if (decision.action !== 'deliver') throw fail('TLS_REQUIRED_UNAVAILABLE', 'the recipient domain cannot take mail now');
    const sender = (await senderNow()).context;
    const raw = await buildWireMessage(
      { from: `${quotedName(practice.name)} <${sender.address}>`, to, subject, text, phiFree: true },
      { messageId: `<${randomUUID()}@${sender.verifiedDomain}>`, date: now() },
      dkim,
    );
    const outcome = await transport.send({ domain, candidate: decision.candidate, tls: decision.tls, envelope: { from: sender.address, to }, raw });
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

  /** Opens the patient's facts and merges them in memory; the result lives only for this send. */
  const render = async (m: OutboxMessage): Promise<RenderedMessage> => {
    const id = Number(m.patientId);
    const facts = (await app.facts.readFacts([id])).get(id);
    // BAD_REQUEST fails the message at once (no retry): these do not heal by waiting.
    if (!facts) throw fail('BAD_REQUEST', 'the recipient is no longer in the store');
    if (facts.deceased) throw fail('BAD_REQUEST', 'the recipient is deceased');
    if (!facts.email) throw fail('BAD_REQUEST', 'the recipient has no email address');
    if (!(await dispatchable(m.campaignId))) throw fail('BAD_REQUEST', 'the campaign approval was withdrawn or the campaign stopped');
    const sender = (await senderNow()).context;
    const template = await compiledFor(m.templateVersion);
    const link = unsubscribeUrl(m);
    const context: MergeContext & { deliveryMode: DeliveryMode } = {
      practice, sender, now: now(), deliveryMode: m.deliveryMode, ...(link ? { links: { unsubscribe: link } } : {}),
    };
    const composed = template.render(facts, context);
    // Links become opaque click tokens and an open pixel is added: no PHI goes into a URL.
    const html = composed.html && tracking ? await tracking.instrument(m, reveal(composed.html)) : reveal(composed.html);
    return {
      from: reveal(composed.from),
      to: String(facts.email).trim(),
      subject: composed.subject,
      text: reveal(composed.text),
      ...(html ? { html } : {}),
      phiFree: composed.phiFree,
    };
  };

  const dispatcher = new Dispatcher({
    outbox,
    router,
    transport,
    render,
    isAllowed: consentGate(app.consent),
    suppressions: createFeedbackProcessor({ db: app.db, cipher: app.cipher, now, log }),
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
    envelopeFrom: () => current!.context.address,
    ...(options.workerId ? { workerId: options.workerId } : {}),
    concurrency: options.concurrency ?? config.senderConcurrency,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
    ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
    now,
    log,
  });

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
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  const stop = async () => {
    running = false;
    wake?.();
    await loop;
    await dispatcher.flush();
  };

  const drainOnce = async () => {
    const runs = await campaigns.runDue();
    const summary = await dispatcher.drain();
    const campaignsSent = await campaigns.completeFinished();
    return { ...summary, campaignsQueued: runs.filter((r) => r.report).length, campaignsSent };
  };

  return {
    outbox, router, transport, dispatcher, campaigns, templates, segments, dkimKeys, escrow, unsubscribeTokens,
    tracking,
    sender: async () => (await senderNow()).context,
    drainOnce,
    start(idleMs = 1000) {
      if (running) return;
      running = true;
      loop = (async () => {
        while (running) {
          let worked = false;
          try {
            const s = await drainOnce();
            worked = s.claimed > 0 || s.campaignsQueued > 0;
          } catch (err) {
            log.error({ err: err as Error }, 'send loop failed');
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
      if (running) await stop();
      await transport.close();
    },
  };
}
