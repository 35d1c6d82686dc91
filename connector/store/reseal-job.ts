// Resealing after a rotation: walks every registered sealed column in id order, batch by batch, resumable from its cursor.
import { asOutreachError, fail } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import { asBuffer, loadQueries, type Db } from './db.js';
import { versionBytes, versionPrefix, type Keyring, type SealedColumn } from './keyring.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'openResealJobs',
  'resealJobs',
  'resealProgress',
  'ensureResealProgress',
  'advanceResealProgress',
  'finishResealJob',
  'idColumnType',
  'insertResealJob',
] as const);

const identifier = /^[a-z_][a-z0-9_]*$/;
const typeName = /^[a-z][a-z0-9 _]*(\([0-9, ]+\))?$/;

export interface ResealColumnProgress {
  table: string;
  column: string;
  resealed: number;
  /** Values still sealed under an older version. */
  remaining: number;
  done: boolean;
}

export interface ResealJobStatus {
  id: number;
  targetVersion: number;
  state: 'running' | 'done';
  createdAt: string;
  finishedAt?: string;
  resealed: number;
  columns: ResealColumnProgress[];
}

export interface ResealOptions {
  batchSize?: number;
  /** Stops between batches (the job resumes from its cursor next time). */
  signal?: AbortSignal;
  onBatch?: (progress: { jobId: number; table: string; column: string; resealed: number }) => void;
  log?: Log;
}

type ColumnRef = Pick<SealedColumn, 'table' | 'column' | 'idColumn'>;

function checkColumn<C extends ColumnRef>(c: C): C {
  if (![c.table, c.column, c.idColumn].every((s) => identifier.test(s))) {
    throw fail('INVALID_CONFIG', 'sealed_columns holds an invalid identifier');
  }
  return c;
}

/** Values in a column that are not under `version` (what a reseal still has to do). */
export async function countStale(db: Db, c: ColumnRef, version: number): Promise<number> {
  checkColumn(c);
  const [row] = await db.query<{ n: number | string }>(
    `SELECT count(*) AS n FROM ${c.table} WHERE ${c.column} IS NOT NULL AND substring(${c.column} from 1 for ${versionBytes}) <> $1`,
    [versionPrefix(version)],
  );
  return Number(row?.n ?? 0);
}

/**
 * Runs every open reseal job to the end (or until `signal` aborts). Each batch reads rows under older versions after the
 * cursor, reseals them under the current key, and writes them back only where the value is unchanged (a concurrent
 * write wins), advancing the cursor in the same transaction. Returns the number of values resealed.
 */
export async function runResealJobs(db: Db, keyring: Keyring, options: ResealOptions = {}): Promise<number> {
  const batchSize = options.batchSize ?? 500;
  const log = options.log ?? silentLog;
  let total = 0;
  await keyring.refresh();
  const jobs = await db.query<{ id: number | string; target_version: number }>(q.openResealJobs);
  for (const job of jobs) {
    const jobId = Number(job.id);
    // A job created after this keyring last looked: resealing under an older current key would mark it done early.
    if (keyring.currentVersion < job.target_version) await keyring.refresh();
    if (keyring.currentVersion < job.target_version) {
      log.warn({ jobId, targetVersion: job.target_version }, 'reseal job skipped: its key version is not in this keyring yet');
      continue;
    }
    const columns = (await keyring.sealedColumns()).map(checkColumn);
    for (const c of columns) await db.query(q.ensureResealProgress, [jobId, c.table, c.column]);
    const progress = await db.query<{ table_name: string; column_name: string; cursor: string | null; done: boolean }>(
      q.resealProgress,
      [[jobId]],
    );
    for (const c of columns) {
      const p = progress.find((r) => r.table_name === c.table && r.column_name === c.column);
      if (p?.done) continue;
      const [type] = await db.query<{ type: string }>(q.idColumnType, [c.table, c.idColumn]);
      if (!type) {
        // A registered table its module has not created (yet): nothing sealed there.
        await db.query(q.advanceResealProgress, [jobId, c.table, c.column, p?.cursor ?? null, 0, true]);
        continue;
      }
      if (!typeName.test(type.type)) throw fail('INVALID_CONFIG', `unsupported id column type for ${c.table}`);
      // The AAD row id in SQL, and the id column value back from it.
      const hex = c.rowIdFormat === 'hex';
      const rowIdSql = hex ? `encode(${c.idColumn}, 'hex')` : `${c.idColumn}::text`;
      const fromRowId = (param: string) => (hex ? `decode(${param}, 'hex')` : `${param}::${type.type}`);
      let cursor = p?.cursor ?? null;
      for (;;) {
        if (options.signal?.aborted) return total;
        const current = keyring.currentVersion;
        const select =
          `SELECT ${rowIdSql} AS row_id, ${c.column} AS sealed FROM ${c.table} ` +
          `WHERE ${c.column} IS NOT NULL AND substring(${c.column} from 1 for ${versionBytes}) <> $1` +
          (cursor === null ? '' : ` AND ${c.idColumn} > ${fromRowId('$3')}`) +
          ` ORDER BY ${c.idColumn} LIMIT $2`;
        const rows = await db.query<{ row_id: string; sealed: Uint8Array }>(
          select,
          cursor === null ? [versionPrefix(current), batchSize] : [versionPrefix(current), batchSize, cursor],
        );
        const ids: string[] = [];
        const olds: Buffer[] = [];
        const news: Buffer[] = [];
        for (const r of rows) {
          const at = { table: c.table, column: c.column, rowId: r.row_id };
          const old = asBuffer(r.sealed);
          ids.push(r.row_id);
          olds.push(old);
          news.push(keyring.seal(keyring.open(old, at), at));
        }
        const last = rows.length > 0 ? rows[rows.length - 1]!.row_id : cursor;
        const finished = rows.length < batchSize;
        const written = await db.transaction(async (tx) => {
          let n = 0;
          if (ids.length > 0) {
            const updated = await tx.query(
              `UPDATE ${c.table} t SET ${c.column} = v.sealed ` +
                `FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS v(row_id, old, sealed) ` +
                `WHERE t.${c.idColumn} = ${fromRowId('v.row_id')} AND t.${c.column} = v.old RETURNING 1`,
              [ids, olds, news],
            );
            n = updated.length;
          }
          await tx.query(q.advanceResealProgress, [jobId, c.table, c.column, last, n, finished]);
          return n;
        });
        total += written;
        cursor = last;
        options.onBatch?.({ jobId, table: c.table, column: c.column, resealed: written });
        if (finished) break;
        // Let other work of this process run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    await db.query(q.finishResealJob, [jobId]);
    log.info({ jobId, resealed: total }, 'reseal job finished');
  }
  return total;
}

/**
 * Queues a reseal job when values under older versions remain and no job is open (a process that sealed with its old
 * key after the last job passed). Returns the new job's id, or undefined when nothing needed one.
 */
export async function queueResealIfStale(db: Db, keyring: Keyring): Promise<number | undefined> {
  await keyring.refresh();
  if ((await db.query(q.openResealJobs)).length > 0) return undefined;
  let stale = 0;
  for (const c of await keyring.sealedColumns()) {
    const exists = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [c.table]);
    if (exists[0]?.t) stale += await countStale(db, c, keyring.currentVersion);
  }
  if (stale === 0) return undefined;
  const [job] = await db.query<{ id: number | string }>(q.insertResealJob, [keyring.currentVersion]);
  return Number(job!.id);
}

/** The most recent reseal jobs with per-column progress. */
export async function resealStatus(db: Db, keyring: Keyring, limit = 5): Promise<ResealJobStatus[]> {
  const jobs = await db.query<{ id: number | string; target_version: number; state: 'running' | 'done'; created_at: Date | string; finished_at: Date | string | null }>(
    q.resealJobs,
    [limit],
  );
  if (jobs.length === 0) return [];
  const progress = await db.query<{ job_id: number | string; table_name: string; column_name: string; resealed: number | string; done: boolean }>(
    q.resealProgress,
    [jobs.map((j) => Number(j.id))],
  );
  const columns = await keyring.sealedColumns();
  const remainingByColumn = new Map<string, number>();
  for (const c of columns) {
    const exists = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [c.table]);
    remainingByColumn.set(`${c.table}.${c.column}`, exists[0]?.t ? await countStale(db, c, keyring.currentVersion) : 0);
  }
  return jobs.map((j) => {
    const id = Number(j.id);
    const cols = columns.map((c) => {
      const p = progress.find((r) => Number(r.job_id) === id && r.table_name === c.table && r.column_name === c.column);
      return {
        table: c.table,
        column: c.column,
        resealed: Number(p?.resealed ?? 0),
        remaining: j.state === 'running' ? remainingByColumn.get(`${c.table}.${c.column}`) ?? 0 : 0,
        done: j.state === 'done' || Boolean(p?.done),
      };
    });
    return {
      id,
      targetVersion: j.target_version,
      state: j.state,
      createdAt: new Date(j.created_at).toISOString(),
      ...(j.finished_at ? { finishedAt: new Date(j.finished_at).toISOString() } : {}),
      resealed: cols.reduce((n, c) => n + c.resealed, 0),
      columns: cols,
    };
  });
}

/**
 * The reseal worker: `kick()` runs the open jobs once (the CLI waits on it); `start()` is background mode for servers.
 * It works one batch at a time and stops between batches on `stop()`. A failure is logged; the job stays resumable.
 */
export class ResealWorker {
  private readonly abort = new AbortController();
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;
  private unsubscribe: (() => void) | undefined;
  private readonly batchListeners = new Set<NonNullable<ResealOptions['onBatch']>>();

  private timer: NodeJS.Timeout | undefined;
  private firstRun: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly keyring: Keyring,
    private readonly log: Log = silentLog,
    private readonly batchSize = 500,
  ) {}

  /**
   * Background mode for long-running processes: open jobs run `firstRunMs` after start (a short CLI command has ended
   * by then and never picks up background work), then the data keys are re-read every `pollMs`, so a rotation made by
   * another process (the CLI) becomes current here and its reseal runs in this process. A rotation made in this
   * process starts its reseal at once.
   */
  start(options: { pollMs?: number; firstRunMs?: number } = {}): void {
    if (this.timer || this.abort.signal.aborted) return;
    this.unsubscribe = this.keyring.onRotation(() => void this.kick());
    const first = setTimeout(() => void this.kick(), options.firstRunMs ?? 10_000);
    first.unref();
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.keyring.refresh().catch((err: unknown) => this.log.warn({ err: asOutreachError(err) }, 'data key refresh failed'));
    }, options.pollMs ?? 60_000);
    this.timer.unref();
    this.firstRun = first;
  }

  /** Starts (or re-runs after the current pass) the open jobs. Resolves when the worker is idle. */
  kick(): Promise<void> {
    if (this.abort.signal.aborted) return this.running;
    if (this.busy) {
      this.again = true;
      return this.running;
    }
    this.busy = true;
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await runResealJobs(this.db, this.keyring, {
            batchSize: this.batchSize,
            signal: this.abort.signal,
            log: this.log,
            onBatch: (p) => this.batchListeners.forEach((l) => l(p)),
          });
        } while (this.again && !this.abort.signal.aborted);
      } catch (err) {
        this.log.error({ err: asOutreachError(err) }, 'reseal job failed; it resumes on the next start or `outreach keys reseal`');
      } finally {
        this.busy = false;
      }
    })();
    return this.running;
  }

  /** Observes every resealed batch (progress bars); returns the unsubscribe function. */
  onBatch(listener: NonNullable<ResealOptions['onBatch']>): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  /** Idle when no pass is running. */
  whenIdle(): Promise<void> {
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.firstRun) clearTimeout(this.firstRun);
    this.unsubscribe?.();
    this.abort.abort();
    await this.running;
  }
}
