// Wires delivery from the configuration: DNS servers, extra CAs, direct-to-MX or the relay, the outbox and the dispatcher; the one construction path (the sending service builds its delivery parts here).
import type { Config } from '../config.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import type { Db } from '../store/db.js';
import type { Suppressions } from './bounces.js';
import type { DkimSigner } from './dkim.js';
import { Dispatcher, type ConsentGate, type DispatcherOptions } from './dispatcher.js';
import { createDnsLookup, type DnsLookup } from './dns-client.js';
import type { EscrowDesk, NoticeOptions } from './escrow-notice.js';
import type { RenderedMessage } from './mime.js';
import { createMtaSts } from './mta-sts.js';
import { createMxResolver, dnsConnectTarget, type ConnectTargetMap } from './mx-resolver.js';
import { createOutbox, type Outbox, type OutboxMessage } from './outbox.js';
import { createDirectRouter, createRelayRouter, type Router } from './route.js';
import { createThreadedConnections } from './sending-threads.js';
import { createStarttlsProbe } from './starttls-probe.js';
import type { Tracking } from './tracking.js';
import { createTransport, parseRelayUrl, type Transport } from './transport.js';
import { loadExtraCa } from './trust.js';

export interface DeliveryServiceDeps {
  config: Pick<Config, 'dnsServers' | 'extraCaFile' | 'smtpRelayUrl' | 'senderConcurrency' | 'mxConnections'> & Partial<Pick<Config, 'senderThreads'>>;
  db: Db;
  /** Our host name: the EHLO name (and the Message-ID domain unless `messageIdDomain` is given). */
  heloName: string;
  /** The domain of our Message-IDs (the sender domain); default heloName. */
  messageIdDomain?: string;
  render: (message: OutboxMessage) => Promise<RenderedMessage>;
  renderMany?: DispatcherOptions['renderMany'];
  isAllowed: ConsentGate;
  isAllowedMany?: DispatcherOptions['isAllowedMany'];
  /** DNS for MX, MTA-STS and TLSA (default: config.dnsServers or the system resolver). */
  dns?: DnsLookup;
  /** Extra trusted CAs, added to Node's roots and config.extraCaFile. */
  ca?: readonly string[];
  /** Per-MX STARTTLS probe cache (default 1 hour for a success). */
  probeTtlMs?: number;
  /** SMTP, probe and MTA-STS time-outs. */
  timeoutMs?: number;
  dkim?: DkimSigner;
  escrow?: EscrowDesk;
  notice?: NoticeOptions;
  suppressions?: Suppressions;
  tracking?: Pick<Tracking, 'instrument'>;
  unsubscribeUrl?: (message: OutboxMessage) => string | undefined;
  envelopeFrom?: DispatcherOptions['envelopeFrom'];
  onOutcome?: DispatcherOptions['onOutcome'];
  recordWithOutcomes?: DispatcherOptions['recordWithOutcomes'];
  /** Replaces the A-record look-up of MX and MTA-STS hosts (tests point names at loopback ports). */
  connectTarget?: ConnectTargetMap;
  workerId?: string;
  /** Messages in flight at once (default config.senderConcurrency). */
  concurrency?: number;
  batchSize?: number;
  leaseMs?: number;
  retryDelaysMs?: readonly number[];
  now?: () => Date;
  log?: Log;
}

export interface DeliveryService {
  outbox: Outbox;
  router: Router;
  transport: Transport;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export function createDeliveryService(deps: DeliveryServiceDeps): DeliveryService {
  const ca = [...loadExtraCa(deps.config.extraCaFile), ...(deps.ca ?? [])];
  const log = deps.log ?? silentLog;
  const timeouts = deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {};
  const relay = deps.config.smtpRelayUrl ? parseRelayUrl(deps.config.smtpRelayUrl) : undefined;
  let router: Router;
  if (relay) {
    router = createRelayRouter({ host: relay.host, target: { host: relay.host, port: relay.port } });
  } else {
    const dns = deps.dns ?? createDnsLookup(deps.config.dnsServers);
    const connectTarget = deps.connectTarget ?? dnsConnectTarget(dns);
    router = createDirectRouter({
      dns,
      mxResolver: createMxResolver(dns),
      mtaSts: createMtaSts({ dns, connectTarget, ca, ...timeouts }),
      probe: createStarttlsProbe({ heloName: deps.heloName, ca, ...(deps.probeTtlMs ? { ttlMs: deps.probeTtlMs } : {}), ...timeouts }),
      connectTarget,
    });
  }
  const wire = { heloName: deps.heloName, ca, ...(relay ? { relay } : {}), ...timeouts, maxConnectionsPerMx: deps.config.mxConnections };
  const threads = deps.config.senderThreads ?? 0;
  const transport = createTransport({
    ...wire, log,
    maxPerDomain: 2 * deps.config.mxConnections,
    // DKIM, TLS and SMTP on worker threads: this event loop only claims, gates, renders and records.
    ...(threads > 0 ? { connections: createThreadedConnections({ ...wire, threads, log }) } : {}),
  });
  const outbox = createOutbox(deps.db, { messageIdDomain: deps.messageIdDomain ?? deps.heloName, ...(deps.now ? { now: deps.now } : {}) });
  const optional = <K extends keyof DeliveryServiceDeps>(...keys: K[]) =>
    Object.fromEntries(keys.filter((k) => deps[k] !== undefined).map((k) => [k, deps[k]])) as Partial<Pick<DeliveryServiceDeps, K>>;
  const dispatcher = new Dispatcher({
    outbox, router, transport, log,
    render: deps.render,
    isAllowed: deps.isAllowed,
    concurrency: deps.concurrency ?? deps.config.senderConcurrency,
    ...(optional('renderMany', 'isAllowedMany', 'dkim', 'escrow', 'notice', 'suppressions', 'tracking', 'unsubscribeUrl', 'envelopeFrom', 'onOutcome', 'recordWithOutcomes', 'workerId', 'batchSize', 'leaseMs', 'retryDelaysMs', 'now') as Partial<DispatcherOptions>),
  });
  return {
    outbox, router, transport, dispatcher,
    close: async () => {
      await dispatcher.stop();
      await transport.close();
    },
  };
}
