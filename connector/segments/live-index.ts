// Keeps a segment index live: built from the store's decrypted facts, then fed by facts writes and consent changes, those of other processes included.
import type { PatientFacts } from '../../fhir/patient-facts.js';
import type { HistoryFollower } from '../consent/history-follower.js';
import { purposeList } from '../consent/purposes.js';
import { silentLog, type Log } from '../logger.js';
import { SegmentIndex } from './segment-index.js';

/** What the index needs of the store (the FactsRepository has exactly this shape). */
export interface FactsFeed {
  iterateAllFacts(batchSize?: number): AsyncIterable<ReadonlyArray<{ id: number; facts: PatientFacts }>>;
  onFactsWritten(listener: (written: ReadonlyArray<{ id: number; facts: PatientFacts }>) => void | Promise<void>): () => void;
}

/** What the index needs of the consent registry: the dispatch gate for many patients, and its change hook. */
export interface AuthorizationFeed {
  isAllowedMany(
    patientIds: readonly number[],
    purpose: (typeof purposeList)[number],
  ): Promise<Map<string, { allowed: boolean; reason: string }>>;
  onConsentChanged(listener: (changes: ReadonlyArray<{ patientId: string; authorizationId?: string }>) => void | Promise<void>): () => void;
  /** Follows the history every process appends to (the listener above hears only this process). */
  followHistory?(): Promise<HistoryFollower>;
}

export interface LiveSegmentIndex {
  index: SegmentIndex;
  /** Settles when every change heard so far is in the index (tests and the CLI wait on it). */
  settled(): Promise<void>;
  /**
   * Hears each look at the authorization history once its changes from other processes are in the index: how many
   * history rows were new to this process (0 when none). Returns the unsubscribe function.
   */
  onFollowed(listener: (changes: number) => void): () => void;
  /** Stops listening and following; settles once a look under way has finished. */
  close(): Promise<void>;
}

export interface LiveSegmentIndexOptions {
  facts: FactsFeed;
  consent?: AuthorizationFeed;
  log?: Log;
  /**
   * How often the authorization history is read for changes other processes recorded (an unsubscribe on the server
   * while a CLI holds an index, a Salesforce opt-out pull): default 2000 ms, 0 to not follow.
   */
  followEveryMs?: number;
}

const gateBatch = 5000;

/**
 * Builds the index and keeps it current. Writes that commit while the build runs are held and applied after it,
 * so a page read before a write can never overwrite the newer facts. Authorization is the consent gate's own
 * decision taken now: `authorized` per purpose, and `suppressed` for a channel-wide opt-out. The gate at dispatch
 * stays the authority; the index only lets marketers see audiences as they will be sent.
 */
export async function openLiveSegmentIndex(deps: LiveSegmentIndexOptions): Promise<LiveSegmentIndex> {
  const log = deps.log ?? silentLog;
  const index = new SegmentIndex();
  let building = true;
  const heldFacts: Array<ReadonlyArray<{ id: number; facts: PatientFacts }>> = [];
  const heldConsent = new Set<number>();
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (work: () => Promise<void>) => {
    queue = queue.then(work).catch((err: unknown) => log.warn({ err }, 'segment index update failed'));
    return queue;
  };

  const refreshAuthorization = async (ids: readonly number[]) => {
    if (!deps.consent || ids.length === 0) return;
    const present = ids.filter((id) => index.has(id));
    for (let i = 0; i < present.length; i += gateBatch) {
      const batch = present.slice(i, i + gateBatch);
      const suppressed = new Set<number>();
      for (const purpose of purposeList) {
        const decisions = await deps.consent.isAllowedMany(batch, purpose);
        for (const id of batch) {
          const d = decisions.get(String(id));
          index.setAuthorized(id, purpose, d?.allowed ?? false);
          if (d?.reason === 'channel-opted-out') suppressed.add(id);
        }
      }
      for (const id of batch) index.setSuppressed(id, suppressed.has(id));
    }
  };

  const offFacts = deps.facts.onFactsWritten((written) => {
    if (building) {
      heldFacts.push(written);
      return;
    }
    return enqueue(async () => {
      for (const w of written) index.upsert(w.id, w.facts);
      await refreshAuthorization(written.map((w) => w.id));
    });
  });
  // Opened before the build reads the gate, so a change another process commits meanwhile is found by the first look.
  const followEveryMs = deps.followEveryMs ?? 2000;
  const follower = followEveryMs > 0 && deps.consent?.followHistory ? await deps.consent.followHistory() : undefined;
  /** History rows this process recorded and applied through its listener, which the follower then skips. */
  const appliedHere = new Set<string>();
  const offConsent = deps.consent?.onConsentChanged((changes) => {
    if (follower) for (const c of changes) if (c.authorizationId && !follower.seen(c.authorizationId)) appliedHere.add(c.authorizationId);
    const ids = changes.map((c) => Number(c.patientId)).filter((id) => Number.isSafeInteger(id));
    if (building) {
      for (const id of ids) heldConsent.add(id);
      return;
    }
    return enqueue(() => refreshAuthorization(ids));
  });

  const started = performance.now();
  try {
    for await (const page of deps.facts.iterateAllFacts(1000)) for (const { id, facts } of page) index.upsert(id, facts);
    const ids: number[] = [];
    for (let w = 0; w < index.present.length; w++) {
      let x = index.present[w]!;
      while (x !== 0) {
        const low = x & -x;
        ids.push((w << 5) + 31 - Math.clz32(low));
        x ^= low;
      }
    }
    await refreshAuthorization(ids);
    // Drain what arrived meanwhile; the last check and the switch to live updates happen with no await between.
    while (heldFacts.length > 0 || heldConsent.size > 0) {
      const written = heldFacts.splice(0).flat();
      const changed = [...heldConsent];
      heldConsent.clear();
      for (const w of written) index.upsert(w.id, w.facts);
      await refreshAuthorization([...new Set([...written.map((w) => w.id), ...changed])]);
    }
  } catch (err) {
    offFacts();
    offConsent?.();
    throw err;
  }
  building = false;
  index.sortA1c();
  log.info({ patients: index.size, ms: Math.round(performance.now() - started), bytes: index.bytes() }, 'segment index built');

  // Changes other processes record reach the index within `followEveryMs`: one look at a time, in the update queue.
  const followed = new Set<(changes: number) => void>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let looking: Promise<void> = Promise.resolve();
  const look = async () => {
    const rows = await follower!.next();
    const foreign = rows.filter((r) => !appliedHere.delete(r.id));
    await refreshAuthorization([...new Set(foreign.map((r) => Number(r.patientId)).filter((id) => Number.isSafeInteger(id)))]);
    if (foreign.length > 0) log.debug({ changes: foreign.length }, 'segment index followed consent changes of other processes');
    for (const listener of followed) listener(foreign.length);
  };
  const schedule = () => {
    if (closed || !follower) return;
    timer = setTimeout(() => {
      looking = enqueue(look).then(schedule);
    }, followEveryMs);
    timer.unref();
  };
  schedule();

  return {
    index,
    settled: () => queue,
    onFollowed: (listener) => {
      followed.add(listener);
      return () => followed.delete(listener);
    },
    close: async () => {
      closed = true;
      clearTimeout(timer);
      offFacts();
      offConsent?.();
      await looking;
    },
  };
}
