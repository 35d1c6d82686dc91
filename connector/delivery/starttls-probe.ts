// Asks an MX, without sending mail, whether it offers STARTTLS and completes a verified handshake (with DANE), and caches the answer per MX with a TTL.
import net from 'node:net';
import tls from 'node:tls';
import type { DaneResult } from './dane.js';
import type { TlsaRecord } from './dns-client.js';
import type { ConnectTarget } from './mx-resolver.js';
import { describePeer, noTls, tlsFailureReason, verifiedTlsOptions, type PeerEvidence } from './tls-evidence.js';

export type ProbeFailure =
  | 'connect-failed'
  | 'no-starttls'
  | 'starttls-refused'
  | 'handshake-failed'
  | 'cert-expired'
  | 'cert-untrusted'
  | 'cert-hostname'
  | 'dane-mismatch';

export interface ProbeResult {
  mx: string;
  starttls: boolean;
  peer: PeerEvidence;
  dane: DaneResult;
  failure?: ProbeFailure;
  at: number;
}

export interface ProbeRequest {
  mx: string;
  target: ConnectTarget;
  tlsa: readonly TlsaRecord[];
}

export interface StarttlsProbeOptions {
  /** Our EHLO name. */
  heloName: string;
  ca?: readonly string[];
  /** How long a successful result is trusted (default 1 hour). */
  ttlMs?: number;
  /** How long a failure is remembered before asking again (default 5 minutes). */
  failureTtlMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface StarttlsProbe {
  probe(request: ProbeRequest): Promise<ProbeResult>;
  /** Forgets an MX (after a delivery contradicted the cached answer). */
  forget(mx: string): void;
}

/** Reads SMTP replies (multi-line `250-...` up to `250 ...`) from a plaintext socket. */
function replyReader(socket: net.Socket) {
  let buffer = '';
  let pending: { resolve: (r: { code: number; text: string }) => void; reject: (e: Error) => void } | undefined;
  const lines: string[] = [];
  const tryResolve = () => {
    if (!pending) return;
    const end = lines.findIndex((l) => /^\d{3}(?: |$)/.test(l));
    if (end < 0) return;
    const reply = lines.splice(0, end + 1);
    const p = pending;
    pending = undefined;
    p.resolve({ code: Number(reply[end]!.slice(0, 3)), text: reply.join('\n') });
  };
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(buffer.slice(0, nl).replace(/\r$/, ''));
      buffer = buffer.slice(nl + 1);
    }
    tryResolve();
  };
  socket.on('data', onData);
  return {
    next: () =>
      new Promise<{ code: number; text: string }>((resolve, reject) => {
        pending = { resolve, reject };
        tryResolve();
      }),
    detach: () => socket.off('data', onData),
  };
}

async function runProbe(req: ProbeRequest, options: StarttlsProbeOptions, now: number): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  let dane: DaneResult = req.tlsa.length ? { status: 'mismatch', records: req.tlsa.length } : { status: 'none' };
  const result = (fields: Partial<ProbeResult>): ProbeResult => ({ mx: req.mx, starttls: false, peer: noTls, dane, at: now, ...fields });
  const socket = net.connect({ host: req.target.host, port: req.target.port });
  socket.setTimeout(timeoutMs);
  const reader = replyReader(socket);
  const closed = new Promise<never>((_, reject) => {
    socket.once('error', (e) => reject(e));
    socket.once('timeout', () => reject(new Error('probe timed out')));
    socket.once('close', () => reject(new Error('connection closed')));
  });
  closed.catch(() => undefined);
  const ask = (line?: string) => {
    if (line !== undefined) socket.write(`${line}\r\n`);
    return Promise.race([reader.next(), closed]);
  };
  try {
    const greeting = await ask();
    if (greeting.code !== 220) return result({ failure: 'connect-failed' });
    const ehlo = await ask(`EHLO ${options.heloName}`);
    if (ehlo.code !== 250) return result({ failure: 'no-starttls' });
    if (!/^250[ -]STARTTLS\b/im.test(ehlo.text)) {
      socket.write('QUIT\r\n');
      return result({ failure: 'no-starttls' });
    }
    const go = await ask('STARTTLS');
    if (go.code !== 220) return result({ starttls: true, failure: 'starttls-refused' });
    reader.detach();
    const secure = tls.connect({
      socket,
      ...verifiedTlsOptions({ servername: req.mx, ca: options.ca ?? [], tlsa: req.tlsa, onDane: (d) => (dane = d) }),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
        secure.setTimeout(timeoutMs, () => reject(new Error('handshake timed out')));
      });
    } catch (err) {
      const reason = tlsFailureReason(err) as ProbeFailure;
      return result({ starttls: true, failure: reason, peer: { ...noTls, failure: reason } });
    }
    const peer = describePeer(secure, secure.authorized);
    secure.end('QUIT\r\n');
    return result({ starttls: true, peer });
  } catch {
    return result({ failure: 'connect-failed' });
  } finally {
    socket.destroy();
  }
}

export function createStarttlsProbe(options: StarttlsProbeOptions): StarttlsProbe {
  const now = options.now ?? Date.now;
  const ttl = options.ttlMs ?? 3_600_000;
  const failureTtl = options.failureTtlMs ?? 300_000;
  const cache = new Map<string, ProbeResult>();
  const inflight = new Map<string, Promise<ProbeResult>>();
  const keyOf = (r: ProbeRequest) =>
    `${r.mx}|${r.target.host}:${r.target.port}|${r.tlsa.map((t) => `${t.usage}${t.selector}${t.matchingType}${t.data.toString('hex')}`).join(',')}`;
  return {
    async probe(request) {
      const key = keyOf(request);
      const hit = cache.get(key);
      if (hit && now() - hit.at < (hit.failure ? failureTtl : ttl)) return hit;
      let running = inflight.get(key);
      if (!running) {
        running = runProbe(request, options, now()).finally(() => inflight.delete(key));
        inflight.set(key, running);
      }
      const res = await running;
      cache.set(key, res);
      return res;
    },
    forget(mx) {
      for (const k of cache.keys()) if (k.startsWith(`${mx}|`)) cache.delete(k);
    },
  };
}
