// SMTP transport: nodemailer connections pooled per MX and TLS profile (here or on sending threads), DKIM at the wire, per-domain concurrency caps, back-off on 4xx, and the TLS evidence of each send.
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import { dkimSignerFor, type DkimOptions } from './dkim.js';
import type { RouteCandidate } from './route.js';
import { describePeer, noTls, tlsFailureReason, verifiedTlsOptions, type PeerEvidence } from './tls-evidence.js';

export interface SendRequest {
  domain: string;
  candidate: RouteCandidate;
  /** 'verified' refuses to send unless the connection verified; 'opportunistic' is for PHI-free content only. */
  tls: 'verified' | 'opportunistic';
  envelope: { from: string; to: string };
  raw: Buffer;
  /** Signed with this key just before it goes on the wire (on whichever thread sends it); absent: sent as it is. */
  dkim?: DkimOptions;
}

/** What the wire needs of a request: the route's MX, where to connect and its TLSA records. */
export type WireRequest = Omit<SendRequest, 'candidate'> & { candidate: Pick<RouteCandidate, 'mx' | 'target' | 'tlsa'> };

/** The wire half of a transport: connection pools per MX and TLS profile, DKIM, and the plaintext retry for PHI-free mail. No caps, no back-off. */
export interface Connections {
  deliver(request: WireRequest): Promise<SendOutcome>;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  heloName: string;
  /** Extra CAs (config.extraCaFile). */
  ca?: readonly string[];
  maxConnectionsPerMx?: number;
  maxMessagesPerConnection?: number;
  /** Send everything through this smarthost instead of the MX. */
  relay?: RelayOptions;
  timeoutMs?: number;
}

export type SendOutcome =
  | { status: 'delivered'; code: number; response: string; peer: PeerEvidence }
  /** Try again later: a 4xx, a network error, or (tlsFailure set) verified TLS failed on a route the probe had cleared. */
  | { status: 'deferred'; code?: number; response: string; peer: PeerEvidence; tlsFailure?: string }
  | { status: 'rejected'; code: number; response: string; peer: PeerEvidence };

export interface Transport {
  send(request: SendRequest): Promise<SendOutcome>;
  /** Epoch ms until which a domain is backed off after 4xx answers (0 when it is not). */
  backoffUntil(domain: string): number;
  close(): Promise<void>;
}

export interface RelayOptions {
  host: string;
  port: number;
  /** Implicit TLS (smtps, port 465); otherwise STARTTLS is required. */
  secure: boolean;
  user?: string;
  pass?: string;
}

export interface TransportOptions extends ConnectionOptions {
  maxPerDomain?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  log?: Log;
  now?: () => number;
  /** The wire (default: connection pools on this thread); sending threads plug in here. */
  connections?: Connections;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * An SMTP reply as it may be stored and shown: servers quote the recipient ("550 5.1.1 <jane.doe@example.org>:
 * Recipient address rejected", "jane.doe... User unknown"), and an address is PHI. The recipient, its local part and
 * any other address are replaced; the reply is cut at 500 characters.
 */
export function scrubSmtpResponse(response: string, recipient: string): string {
  const at = recipient.lastIndexOf('@');
  const local = at > 0 ? recipient.slice(0, at) : '';
  let out = response.replace(/[^\s<>()[\]"',;:]+@[^\s<>()[\]"',;:]+/g, (m) => (m.toLowerCase() === recipient.toLowerCase() ? '[recipient]' : '[address]'));
  if (local.length >= 3) out = out.replace(new RegExp(escapeRegExp(local), 'gi'), '[recipient]');
  return out.replace(/[\r\n]+/g, ' ').slice(0, 500);
}

/** Parses `smtp(s)://user:pass@host:port` (config.smtpRelayUrl). */
export function parseRelayUrl(url: string): RelayOptions {
  const u = new URL(url);
  const secure = u.protocol === 'smtps:';
  return {
    host: u.hostname,
    port: Number(u.port || (secure ? 465 : 587)),
    secure,
    ...(u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {}),
  };
}

interface Pooled {
  conn: SMTPConnection;
  peer: PeerEvidence;
  sent: number;
  dead: boolean;
  idleTimer?: NodeJS.Timeout;
}

class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

class MxPool {
  private readonly idle: Pooled[] = [];
  private readonly gate: Semaphore;
  private open = 0;
  constructor(
    private readonly make: () => Promise<Pooled>,
    max: number,
  ) {
    this.gate = new Semaphore(max);
  }
  async acquire(): Promise<Pooled> {
    await this.gate.acquire();
    while (this.idle.length) {
      const p = this.idle.pop()!;
      clearTimeout(p.idleTimer);
      if (!p.dead) return p;
      this.open--;
    }
    try {
      const p = await this.make();
      this.open++;
      return p;
    } catch (err) {
      this.gate.release();
      throw err;
    }
  }
  release(p: Pooled, reuse: boolean, maxMessages: number): void {
    if (!reuse || p.dead || p.sent >= maxMessages) {
      p.dead = true;
      this.open--;
      try {
        p.conn.quit();
      } catch {
        p.conn.close();
      }
    } else {
      p.idleTimer = setTimeout(() => {
        p.dead = true;
        p.conn.quit();
      }, 30_000);
      p.idleTimer.unref();
      this.idle.push(p);
    }
    this.gate.release();
  }
  closeAll(): void {
    for (const p of this.idle.splice(0)) {
      clearTimeout(p.idleTimer);
      p.dead = true;
      p.conn.close();
    }
  }
}

type SmtpError = Error & { responseCode?: number; response?: string; code?: string };

/** Connection pools on this thread. */
export function createConnections(options: ConnectionOptions): Connections {
  const pools = new Map<string, MxPool>();
  const timeout = options.timeoutMs ?? 30_000;

  const connect = (request: WireRequest, plaintextOnly = false): Promise<Pooled> => {
    const relay = options.relay;
    const servername = relay ? relay.host : request.candidate.mx;
    const verified = relay ? true : request.tls === 'verified';
    const target = relay ? { host: relay.host, port: relay.port } : request.candidate.target;
    const tls = verified
      ? verifiedTlsOptions({ servername, ca: options.ca ?? [], tlsa: relay ? [] : request.candidate.tlsa })
      : // PHI-free content only (the policy guarantees it): encrypt when the server can, verify nothing.
        { ...(isIP(servername) ? {} : { servername }), rejectUnauthorized: false };
    const conn = new SMTPConnection({
      host: target.host,
      port: target.port,
      name: options.heloName,
      secure: relay?.secure ?? false,
      requireTLS: verified,
      opportunisticTLS: !verified,
      ignoreTLS: plaintextOnly,
      tls,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout * 4,
      logger: false,
    });
    return new Promise<Pooled>((resolve, reject) => {
      const pooled: Pooled = { conn, peer: noTls, sent: 0, dead: false };
      let settled = false;
      conn.on('error', (err: SmtpError) => {
        pooled.dead = true;
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      conn.on('end', () => (pooled.dead = true));
      conn.connect(() => {
        if (settled) return;
        const socket = conn._socket as TLSSocket | false | null;
        const secure = Boolean(conn.secure && socket && 'getPeerCertificate' in socket);
        if (verified && !(secure && (socket as TLSSocket).authorized)) {
          // Belt and braces: requireTLS and rejectUnauthorized already stop this; PHI never rides an unverified socket.
          settled = true;
          conn.close();
          return reject(Object.assign(new Error('connection is not verified TLS'), { code: 'ETLS' }));
        }
        pooled.peer = secure ? describePeer(socket as TLSSocket, (socket as TLSSocket).authorized) : { ...noTls, failure: 'no-tls' };
        const finish = () => {
          settled = true;
          resolve(pooled);
        };
        if (relay?.user) {
          conn.login({ user: relay.user, pass: relay.pass ?? '' }, (err) => {
            if (err) {
              settled = true;
              conn.close();
              return reject(err);
            }
            finish();
          });
        } else finish();
      });
    });
  };

  const poolFor = (request: WireRequest, plaintextOnly: boolean) => {
    const c = request.candidate;
    const key = options.relay
      ? 'relay'
      : `${request.tls}|${plaintextOnly ? 'plain' : 'tls'}|${c.mx}|${c.target.host}:${c.target.port}|${c.tlsa.map((t) => t.data.toString('hex')).join(',')}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = new MxPool(() => connect(request, plaintextOnly), options.maxConnectionsPerMx ?? 5);
      pools.set(key, pool);
    }
    return pool;
  };

  const deliverOnce = async (request: WireRequest, plaintextOnly: boolean): Promise<SendOutcome> => {
    const pool = poolFor(request, plaintextOnly);
    let pooled: Pooled;
    try {
      pooled = await pool.acquire();
    } catch (err) {
      const e = err as SmtpError;
      const tlsFailure = e.code === 'ETLS' || /TLS|certificate|TLSA|self[- ]signed/i.test(e.message) ? tlsFailureReason(e) : undefined;
      return {
        status: 'deferred',
        response: `connect failed: ${e.code ?? 'error'}${tlsFailure ? ` (${tlsFailure})` : ''}`,
        peer: { ...noTls, ...(tlsFailure ? { failure: tlsFailure } : {}) },
        ...(e.responseCode ? { code: e.responseCode } : {}),
        ...(tlsFailure ? { tlsFailure } : {}),
      };
    }
    return new Promise<SendOutcome>((resolve) => {
      pooled.conn.send({ from: request.envelope.from, to: [request.envelope.to] }, request.raw, (err, info) => {
        if (err) {
          const e = err as SmtpError;
          pool.release(pooled, false, 0);
          const code = e.responseCode;
          const response = scrubSmtpResponse(e.response ?? e.message, request.envelope.to);
          if (code && code >= 500) return resolve({ status: 'rejected', code, response, peer: pooled.peer });
          return resolve({ status: 'deferred', response, peer: pooled.peer, ...(code ? { code } : {}) });
        }
        pooled.sent++;
        pool.release(pooled, true, options.maxMessagesPerConnection ?? 100);
        const response = scrubSmtpResponse(String(info?.response ?? '250'), request.envelope.to);
        resolve({ status: 'delivered', code: Number(response.slice(0, 3)) || 250, response, peer: pooled.peer });
      });
    });
  };

  return {
    async deliver(request) {
      let signed = request;
      if (request.dkim) {
        try {
          signed = { ...request, raw: await dkimSignerFor(request.dkim).sign(request.raw) };
        } catch (err) {
          return { status: 'deferred', response: `DKIM signing failed: ${(err as Error).message}`.slice(0, 500), peer: noTls };
        }
      }
      const outcome = await deliverOnce(signed, false);
      // STARTTLS advertised but broken: PHI-free content may still go in plaintext; verified routes never do.
      if (outcome.status === 'deferred' && outcome.tlsFailure && request.tls === 'opportunistic' && !options.relay) return deliverOnce(signed, true);
      return outcome;
    },
    async close() {
      for (const pool of pools.values()) pool.closeAll();
      pools.clear();
    },
  };
}

/** Per-domain concurrency caps and back-off on 4xx in front of the wire (this thread's pools or sending threads). */
export function createTransport(options: TransportOptions): Transport {
  const log = options.log ?? silentLog;
  const now = options.now ?? Date.now;
  const wire = options.connections ?? createConnections(options);
  const domainGates = new Map<string, Semaphore>();
  const backoff = new Map<string, { until: number; failures: number }>();

  return {
    async send(request) {
      const domain = options.relay ? 'relay' : request.domain;
      let gate = domainGates.get(domain);
      if (!gate) {
        gate = new Semaphore(options.maxPerDomain ?? 10);
        domainGates.set(domain, gate);
      }
      await gate.acquire();
      try {
        const outcome = await wire.deliver(request);
        if (outcome.status === 'deferred' && outcome.code && outcome.code >= 400 && outcome.code < 500) {
          const b = backoff.get(request.domain) ?? { until: 0, failures: 0 };
          b.failures++;
          b.until = now() + Math.min((options.backoffBaseMs ?? 1000) * 2 ** (b.failures - 1), options.backoffMaxMs ?? 300_000);
          backoff.set(request.domain, b);
          log.warn({ domain: request.domain, code: outcome.code, failures: b.failures }, 'delivery deferred; domain backed off');
        } else if (outcome.status === 'delivered') {
          backoff.delete(request.domain);
        }
        return outcome;
      } finally {
        gate.release();
      }
    },
    backoffUntil(domain) {
      const b = backoff.get(domain);
      return b && b.until > now() ? b.until : 0;
    },
    close: () => wire.close(),
  };
}
