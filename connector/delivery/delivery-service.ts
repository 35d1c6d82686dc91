// Wires delivery from the configuration: DNS servers, extra CAs, direct-to-MX or the relay, the outbox and the dispatcher; the one call the app and the CLI make.
import type { Config } from '../config.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import type { Db } from '../store/db.js';
import type { Suppressions } from './bounces.js';
import type { DkimSigner } from './dkim.js';
import { Dispatcher, type ConsentGate } from './dispatcher.js';
import { createDnsLookup } from './dns-client.js';
import type { EscrowDesk, NoticeOptions } from './escrow-notice.js';
import type { RenderedMessage } from './mime.js';
import { createMtaSts } from './mta-sts.js';
import { createMxResolver, dnsConnectTarget, type ConnectTargetMap } from './mx-resolver.js';
import { createOutbox, type Outbox, type OutboxMessage } from './outbox.js';
import { createDirectRouter, createRelayRouter, type Router } from './route.js';
import { createStarttlsProbe } from './starttls-probe.js';
import type { Tracking } from './tracking.js';
import { createTransport, parseRelayUrl, type Transport } from './transport.js';
import { loadExtraCa } from './trust.js';

export interface DeliveryServiceDeps {
  config: Pick<Config, 'dnsServers' | 'extraCaFile' | 'smtpRelayUrl' | 'senderConcurrency'>;
  db: Db;
  /** Our host name: the EHLO name and the Message-ID domain. */
  heloName: string;
  render: (message: OutboxMessage) => Promise<RenderedMessage>;
  isAllowed: ConsentGate;
  dkim?: DkimSigner;
  escrow?: EscrowDesk;
  notice?: NoticeOptions;
  suppressions?: Suppressions;
  tracking?: Pick<Tracking, 'instrument'>;
  unsubscribeUrl?: (message: OutboxMessage) => string | undefined;
  /** Replaces the A-record look-up of MX and MTA-STS hosts (tests point names at loopback ports). */
  connectTarget?: ConnectTargetMap;
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
  const ca = loadExtraCa(deps.config.extraCaFile);
  const log = deps.log ?? silentLog;
  const dns = createDnsLookup(deps.config.dnsServers);
  const relay = deps.config.smtpRelayUrl ? parseRelayUrl(deps.config.smtpRelayUrl) : undefined;
  let router: Router;
  if (relay) {
    router = createRelayRouter({ host: relay.host, target: { host: relay.host, port: relay.port } });
  } else {
    const connectTarget = deps.connectTarget ?? dnsConnectTarget(dns);
    router = createDirectRouter({
      dns,
      mxResolver: createMxResolver(dns),
      mtaSts: createMtaSts({ dns, connectTarget, ca }),
      probe: createStarttlsProbe({ heloName: deps.heloName, ca }),
      connectTarget,
    });
  }
  const transport = createTransport({ heloName: deps.heloName, ca, log, ...(relay ? { relay } : {}) });
  const outbox = createOutbox(deps.db, { messageIdDomain: deps.heloName });
  const dispatcher = new Dispatcher({
    outbox, router, transport, log,
    render: deps.render,
    isAllowed: deps.isAllowed,
    concurrency: Math.max(1, deps.config.senderConcurrency) * 4,
    ...(deps.dkim ? { dkim: deps.dkim } : {}),
    ...(deps.escrow ? { escrow: deps.escrow } : {}),
    ...(deps.notice ? { notice: deps.notice } : {}),
    ...(deps.suppressions ? { suppressions: deps.suppressions } : {}),
    ...(deps.tracking ? { tracking: deps.tracking } : {}),
    ...(deps.unsubscribeUrl ? { unsubscribeUrl: deps.unsubscribeUrl } : {}),
  });
  return {
    outbox, router, transport, dispatcher,
    close: async () => {
      await dispatcher.stop();
      await transport.close();
    },
  };
}
