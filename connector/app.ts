// The composition root: opens the store and builds every service from the configuration, once per process.
import { join } from 'node:path';
import type { Config } from './config.js';
import { createLogger, type Log } from './logger.js';
import { migrate, openDb, type Db } from './store/db.js';
import type { FieldCipher } from './store/cipher.js';
import { Keyring, openKeyring } from './store/keyring.js';
import type { KmsProvider } from './store/master-key.js';
import { ResealWorker } from './store/reseal-job.js';
import { FactsRepository } from './store/facts-repository.js';
import { createAuditLog, type AuditLog } from './audit/audit-log.js';
import { ConsentRegistry } from './consent/registry.js';
import { createConsentImport } from './consent/fhir-import.js';
import { UserDirectory } from './users/users.js';
import { SenderDirectory } from './api/sender-directory.js';
import { createDnsLookup } from './delivery/dns-client.js';
import { openLiveSegmentIndex, type LiveSegmentIndex } from './segments/live-index.js';
import { createSendingService, type SendingService } from './sending/sending-service.js';

export interface App {
  config: Config;
  log: Log;
  db: Db;
  /** Versioned data keys under the master key; rotate, retire, re-wrap. */
  keyring: Keyring;
  /** Seals every PHI field (the keyring): AES-256-GCM with AAD table|column|rowId, HMAC blind indexes. */
  cipher: FieldCipher;
  /** Sealed patient facts, quarantine and sync state: the FactsSink of `outreach fhir sync`. */
  facts: FactsRepository;
  /** Reseals values under old key versions in the background after a rotation. */
  reseal: ResealWorker;
  /** The append-only, hash-chained audit log. */
  audit: AuditLog;
  /** HIPAA authorizations: history, the dispatch-time gate `isAllowed`, `onConsentChanged`. */
  consent: ConsentRegistry;
  /** Users, roles, passwords and sessions. */
  users: UserDirectory;
  /** From addresses on DKIM-verified domains (admin). */
  senders: SenderDirectory;
  /**
   * The in-memory segment index over the decrypted facts: built on first use, then kept live by writes and consent
   * changes, and by the authorization history for changes other processes record (read every `consentFollowMs`, 2 s by default, until `close`).
   */
  segmentIndex(): Promise<LiveSegmentIndex>;
  /** The send pipeline (campaigns, outbox, dispatcher, TLS policy, escrow), built on first use from the configuration. */
  sending(): Promise<SendingService>;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  log?: Log;
  /** A KMS provider that wraps the data keys instead of the local master key (file or OUTREACH_MASTER_KEY). */
  kms?: KmsProvider;
  /** Reseal in the background (default true): open jobs 10 s after start, and rotations made here or by another process. */
  resealInBackground?: boolean;
}

export async function openApp(config: Config, options: OpenAppOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.logLevel, file: config.logFile });
  const db = await openDb(
    config.databaseUrl
      ? { databaseUrl: config.databaseUrl, schema: config.databaseSchema, migrate: false }
      : { dataDir: join(config.home, 'pglite'), migrate: false },
  );
  const keyringOptions = { log, ...(options.kms ? { kms: options.kms } : {}) };
  let keyring: Keyring | undefined;
  try {
    // A store that already has data keys proves the master key before any migration runs: a wrong key changes nothing.
    if (await Keyring.storeHasKeys(db)) ({ keyring } = await openKeyring(db, config, keyringOptions));
    await migrate(db);
    keyring ??= (await openKeyring(db, config, keyringOptions)).keyring;
  } catch (err) {
    await db.close();
    throw err;
  }
  const facts = new FactsRepository(db, keyring, { log });
  const reseal = new ResealWorker(db, keyring, log);
  if (options.resealInBackground ?? true) reseal.start();
  const audit = createAuditLog({ db, cipher: keyring });
  const consent = new ConsentRegistry({ db, cipher: keyring, audit, log });
  facts.setConsentSink(createConsentImport({ registry: consent, resolvePatient: (source, id) => facts.idOf(source, id), log }));
  const users = new UserDirectory({
    db,
    audit,
    sessions: { idleMinutes: config.sessionIdleMinutes, absoluteHours: config.sessionAbsoluteHours },
  });
  let segmentIndex: Promise<LiveSegmentIndex> | undefined;
  let sending: Promise<SendingService> | undefined;
  const app: App = {
    config,
    log,
    db,
    keyring,
    cipher: keyring,
    facts,
    reseal,
    audit,
    consent,
    users,
    senders: new SenderDirectory({ db, audit, dns: createDnsLookup(config.dnsServers) }),
    segmentIndex: () => (segmentIndex ??= openLiveSegmentIndex({ facts, consent, log, followEveryMs: config.consentFollowMs })),
    sending: () => {
      sending ??= createSendingService(app);
      sending.catch(() => (sending = undefined));
      return sending;
    },
    close: async () => {
      if (sending) await (await sending.catch(() => undefined))?.close();
      if (segmentIndex) await (await segmentIndex.catch(() => undefined))?.close();
      await reseal.stop();
      await db.close();
    },
  };
  return app;
}
