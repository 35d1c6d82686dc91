// Sending threads: the wire (DKIM, TLS, SMTP) on worker threads, so the event loop that claims, gates, renders and records is never the bottleneck.
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';
import { dkimSignerName, type DkimOptions } from './dkim.js';
import { noTls } from './tls-evidence.js';
import type { ConnectionOptions, Connections, SendOutcome, WireRequest } from './transport.js';

/** What the event loop sends a thread. */
export type ThreadRequest =
  | { type: 'key'; id: number; key: DkimOptions }
  | { type: 'send'; id: number; keyId?: number; request: Omit<WireRequest, 'dkim'> }
  | { type: 'close' };

/** What a thread answers. */
export type ThreadReply = { type: 'ready' } | { type: 'sent'; id: number; outcome: SendOutcome } | { type: 'closed' };

export interface SendingThreadOptions extends ConnectionOptions {
  /** Worker threads (at least 1). Each holds its share of `maxConnectionsPerMx`. */
  threads: number;
  log?: Log;
  /** The thread's entry module (default the product's; tests load one that can be made to die). */
  entry?: URL;
}

interface Thread {
  worker: Worker;
  inFlight: Map<number, (outcome: SendOutcome) => void>;
  /** DKIM keys this thread already holds. */
  keys: Set<number>;
  closed?: () => void;
}

const entry = new URL('./sending-thread-entry.js', import.meta.url);

/**
 * Connections on `threads` worker threads, started on first use. A message goes to the thread with the
 * fewest in flight. A thread that dies answers its messages as deferred (they are retried, never lost) and
 * is replaced on the next send.
 */
export function createThreadedConnections(options: SendingThreadOptions): Connections {
  const log = options.log ?? silentLog;
  const count = Math.max(1, Math.floor(options.threads));
  const { threads: _threads, log: _log, entry: _entry, ...wire } = options;
  const perThread: ConnectionOptions = { ...wire, maxConnectionsPerMx: Math.max(1, Math.ceil((options.maxConnectionsPerMx ?? 10) / count)) };
  const threads: Array<Thread | undefined> = new Array(count).fill(undefined);
  const keyIds = new WeakMap<KeyObject, Map<string, number>>();
  let nextKey = 0;
  let nextId = 0;
  let closing = false;

  const start = (slot: number): Thread => {
    const worker = new Worker(options.entry ?? entry, { workerData: perThread });
    const thread: Thread = { worker, inFlight: new Map(), keys: new Set() };
    worker.unref();
    worker.on('message', (m: ThreadReply) => {
      if (m.type === 'sent') {
        const done = thread.inFlight.get(m.id);
        thread.inFlight.delete(m.id);
        if (thread.inFlight.size === 0) worker.unref();
        done?.(m.outcome);
      } else if (m.type === 'closed') thread.closed?.();
    });
    const lost = (why: string) => {
      if (threads[slot] === thread) threads[slot] = undefined;
      for (const done of thread.inFlight.values()) done({ status: 'deferred', response: `sending thread stopped: ${why}`, peer: noTls });
      thread.inFlight.clear();
      thread.closed?.();
    };
    worker.on('error', (err) => {
      log.error({ err, slot }, 'sending thread failed');
      lost('error');
    });
    worker.on('exit', (code) => lost(`exit ${code}`));
    threads[slot] = thread;
    return thread;
  };

  const keyIdOf = (key: DkimOptions): number => {
    let byName = keyIds.get(key.privateKey);
    if (!byName) {
      byName = new Map();
      keyIds.set(key.privateKey, byName);
    }
    const name = dkimSignerName(key);
    let id = byName.get(name);
    if (id === undefined) {
      id = nextKey++;
      byName.set(name, id);
    }
    return id;
  };

  return {
    deliver(request) {
      if (closing) return Promise.resolve({ status: 'deferred', response: 'transport closed', peer: noTls });
      // The least busy thread, starting one where a slot is empty.
      let slot = 0;
      for (let i = 0; i < count; i++) {
        if (!threads[i]) {
          slot = i;
          break;
        }
        if (threads[i]!.inFlight.size < threads[slot]!.inFlight.size) slot = i;
      }
      const thread = threads[slot] ?? start(slot);
      const { dkim, ...rest } = request;
      let keyId: number | undefined;
      if (dkim) {
        keyId = keyIdOf(dkim);
        if (!thread.keys.has(keyId)) {
          thread.worker.postMessage({ type: 'key', id: keyId, key: dkim } satisfies ThreadRequest);
          thread.keys.add(keyId);
        }
      }
      const id = nextId++;
      return new Promise<SendOutcome>((resolve) => {
        if (thread.inFlight.size === 0) thread.worker.ref();
        thread.inFlight.set(id, resolve);
        thread.worker.postMessage({ type: 'send', id, ...(keyId === undefined ? {} : { keyId }), request: rest } satisfies ThreadRequest);
      });
    },
    async close() {
      closing = true;
      await Promise.all(
        threads.map(async (thread, slot) => {
          if (!thread) return;
          await new Promise<void>((resolve) => {
            thread.closed = resolve;
            thread.worker.ref();
            thread.worker.postMessage({ type: 'close' } satisfies ThreadRequest);
          });
          threads[slot] = undefined;
          await thread.worker.terminate();
        }),
      );
    },
  };
}
