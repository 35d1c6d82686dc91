// Follows the append-only authorization history as any process writes it: what committed since the last look, late commits of lower ids included.
import { loadQueries, type Queryable } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['historyAfter', 'historyWithIds', 'latestHistoryIds'] as const);

/** One history row a follower reports: its id and patient (what changed is read from the gate). */
export interface FollowedChange {
  id: string;
  patientId: string;
}

export interface HistoryFollower {
  /** The rows that committed since the last call (or since the follower was opened), each reported once. */
  next(): Promise<FollowedChange[]>;
  /** True when `id` was already reported or was committed before the follower opened: a caller can skip what it applied itself. */
  seen(id: string): boolean;
}

export interface HistoryFollowerOptions {
  /** Rows read per statement (default 5000). */
  pageSize?: number;
  /**
   * How long an id skipped over is looked for (default 60 s). Ids come from a sequence before the insert commits, so
   * a transaction can commit id 10 after id 11 is visible; a rolled-back one leaves its id unused for good.
   */
  gapMs?: number;
  /** At most this many skipped ids are looked for (the newest are kept; default 10 000). */
  maxGaps?: number;
  clock?: () => number;
}

/**
 * Opens a follower at the end of the history as it stands: the newest rows are read once so that the ids missing
 * among them (transactions still in flight) are looked for too.
 */
export async function followAuthorizationHistory(db: Queryable, options: HistoryFollowerOptions = {}): Promise<HistoryFollower> {
  const pageSize = options.pageSize ?? 5000;
  const gapMs = options.gapMs ?? 60_000;
  const maxGaps = options.maxGaps ?? 10_000;
  const clock = options.clock ?? Date.now;
  /** Skipped ids still looked for, with when they were first skipped. */
  const gaps = new Map<bigint, number>();
  let watermark = 0n;

  const skip = (from: bigint, to: bigint, at: number) => {
    // Only the newest `maxGaps` of a long run: a huge jump is rolled-back work, not transactions in flight.
    const start = to - from > BigInt(maxGaps) ? to - BigInt(maxGaps) : from;
    for (let id = start; id < to; id++) gaps.set(id, at);
    if (gaps.size > maxGaps) for (const id of [...gaps.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, gaps.size - maxGaps)) gaps.delete(id);
  };

  const latest = (await db.query<{ id: string }>(q.latestHistoryIds, [1000])).map((r) => BigInt(r.id));
  if (latest.length > 0) {
    watermark = latest[0]!;
    const present = new Set(latest);
    const floor = latest.length < 1000 ? 1n : latest[latest.length - 1]!;
    const at = clock();
    for (let id = watermark - 1n; id >= floor && watermark - id <= BigInt(maxGaps); id--) if (!present.has(id)) gaps.set(id, at);
  }

  return {
    seen: (id) => {
      const n = BigInt(id);
      return n <= watermark && !gaps.has(n);
    },
    async next() {
      const out: FollowedChange[] = [];
      const at = clock();
      if (gaps.size > 0) {
        const late = await db.query<{ id: string; patient_id: string }>(q.historyWithIds, [[...gaps.keys()].map(String)]);
        for (const r of late) {
          gaps.delete(BigInt(r.id));
          out.push({ id: String(r.id), patientId: String(r.patient_id) });
        }
        for (const [id, since] of gaps) if (at - since >= gapMs) gaps.delete(id);
      }
      for (;;) {
        const page = await db.query<{ id: string; patient_id: string }>(q.historyAfter, [String(watermark), pageSize]);
        for (const r of page) {
          const id = BigInt(r.id);
          if (id > watermark + 1n) skip(watermark + 1n, id, at);
          watermark = id;
          out.push({ id: String(r.id), patientId: String(r.patient_id) });
        }
        if (page.length < pageSize) return out;
      }
    },
  };
}
