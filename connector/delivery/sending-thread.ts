// A sending thread: signs (DKIM) and sends what the dispatcher's event loop hands it, over its own SMTP connection pools.
import { parentPort, workerData } from 'node:worker_threads';
import type { DkimOptions } from './dkim.js';
import { noTls } from './tls-evidence.js';
import { createConnections, type ConnectionOptions, type SendOutcome, type WireRequest } from './transport.js';
import type { ThreadRequest, ThreadReply } from './sending-threads.js';

const port = parentPort!;
const connections = createConnections(workerData as ConnectionOptions);
/** DKIM keys arrive once (a KeyObject crosses threads as a handle) and are then named by number. */
const keys = new Map<number, DkimOptions>();

/** A Buffer crosses a thread as a plain Uint8Array. */
const buffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

async function deliver(m: Extract<ThreadRequest, { type: 'send' }>): Promise<SendOutcome> {
  const r = m.request;
  const dkim = m.keyId === undefined ? undefined : keys.get(m.keyId);
  if (m.keyId !== undefined && !dkim) return { status: 'deferred', response: 'DKIM key not on the sending thread', peer: noTls };
  const request: WireRequest = {
    ...r,
    raw: buffer(r.raw),
    candidate: { ...r.candidate, tlsa: r.candidate.tlsa.map((t) => ({ ...t, data: buffer(t.data) })) },
    ...(dkim ? { dkim } : {}),
  };
  return connections.deliver(request);
}

port.on('message', (m: ThreadRequest) => {
  if (m.type === 'key') {
    keys.set(m.id, m.key);
  } else if (m.type === 'send') {
    deliver(m).then(
      (outcome) => port.postMessage({ type: 'sent', id: m.id, outcome } satisfies ThreadReply),
      (err: unknown) => port.postMessage({ type: 'sent', id: m.id, outcome: { status: 'deferred', response: `sending thread: ${(err as Error).message}`.slice(0, 500), peer: noTls } } satisfies ThreadReply),
    );
  } else if (m.type === 'close') {
    void connections.close().finally(() => port.postMessage({ type: 'closed' } satisfies ThreadReply));
  }
});
port.postMessage({ type: 'ready' } satisfies ThreadReply);
