// The store's connection: PGlite (embedded default) or PostgreSQL, one interface, the same SQL on both.
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';

import { fail } from '../errors.js';

export interface Queryable {
  /** Runs one parameterised statement ($1, $2, ...) and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `fn` in one transaction; it rolls back when `fn` throws. Inside `fn` use `tx` only: on PGlite
   * (one connection) a call on `db` would wait for the transaction to end.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  /** PostgreSQL connection string; without it PGlite is used. */
  databaseUrl?: string;
  /** PostgreSQL schema (created when missing). */
  schema?: string;
  /** PGlite data folder; without it PGlite runs in memory. */
  dataDir?: string;
  /** Pool size on PostgreSQL. */
  poolSize?: number;
  /** Apply pending migrations on open (default true); the app checks the master key first, then calls `migrate`. */
  migrate?: boolean;
}

const migrationsDir = new URL('./migrations/', import.meta.url);

export async function openDb(options: OpenDbOptions = {}): Promise<Db> {
  const db = options.databaseUrl ? await openPostgres(options) : await openPglite(options.dataDir);
  if (options.migrate ?? true) await migrate(db);
  return db;
}

async function openPglite(dataDir?: string): Promise<Db> {
  const { PGlite, types } = await import('@electric-sql/pglite');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // PGlite's own bytea codec converts byte by byte in JS; Buffer's native hex codec is 3-6x faster for sealed values.
  const pg = new PGlite({
    ...(dataDir ? { dataDir } : {}),
    parsers: { [types.BYTEA]: (text: string) => Buffer.from(text.slice(2), 'hex') },
    serializers: {
      [types.BYTEA]: (value: unknown) =>
        typeof value === 'string' ? value : `\\x${asBuffer(value as Uint8Array).toString('hex')}`,
    },
  });
  await pg.waitReady;
  // PGlite is one connection: serialise transactions so statements of two callers never interleave inside one.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    kind: 'pglite',
    query: <R>(sql: string, params: readonly unknown[] = []) =>
      serial(async () => (await pg.query<R>(sql, params as unknown[])).rows),
    exec: (sql) => serial(async () => void (await pg.exec(sql))),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      serial(() =>
        pg.transaction(async (tx) =>
          fn({
            query: async <R>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, params as unknown[])).rows,
            exec: async (sql: string) => void (await tx.exec(sql)),
          }),
        ),
      ) as Promise<T>,
    close: () => pg.close(),
  };
}

async function openPostgres(options: OpenDbOptions): Promise<Db> {
  const { default: pg } = await import('pg');
  const schema = options.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw fail('INVALID_CONFIG', 'DATABASE_SCHEMA must be a lower-case identifier');
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.poolSize ?? 8,
    options: `-c search_path=${schema}`,
  });
  pool.on('error', () => undefined);
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (err) {
    await pool.end();
    throw fail('STORE_UNAVAILABLE', `PostgreSQL is not reachable: ${(err as { code?: string }).code ?? 'connection failed'}`);
  }
  return {
    kind: 'postgres',
    query: async <R>(sql: string, params: readonly unknown[] = []) =>
      (await pool.query(sql, params as unknown[])).rows as R[],
    exec: async (sql) => void (await pool.query(sql)),
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async <R>(sql: string, params: readonly unknown[] = []) =>
            (await client.query(sql, params as unknown[])).rows as R[],
          exec: async (sql: string) => void (await client.query(sql)),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** Applies `migrations/*.sql` in name order, each once, recorded in schema_migrations. */
export async function migrate(db: Db): Promise<string[]> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const done = new Set((await db.query<{ name: string }>('SELECT name FROM schema_migrations')).map((r) => r.name));
  const files = readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  for (const name of files) {
    if (done.has(name)) continue;
    const sql = readFileSync(new URL(name, migrationsDir), 'utf8');
    try {
      await db.transaction(async (tx) => {
        await tx.exec(sql);
        await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
      });
    } catch (err) {
      throw fail('MIGRATION_FAILED', `migration ${name} failed: ${(err as Error).message}`);
    }
    applied.push(name);
  }
  return applied;
}

/** Named queries from a listmonk-style .sql file: blocks introduced by `-- name: queryName`. */
export function loadQueries<N extends string>(file: URL, names: readonly N[]): Record<N, string> {
  const text = readFileSync(file, 'utf8');
  const out: Record<string, string> = {};
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^--\s*name:\s*([A-Za-z0-9_-]+)/.exec(line);
    if (m) {
      current = m[1]!;
      out[current] = '';
    } else if (current) {
      out[current] += line + '\n';
    }
  }
  for (const n of names) {
    if (!out[n]?.trim()) throw fail('INVALID_CONFIG', `query ${n} missing from ${file.pathname}`);
    out[n] = out[n]!.trim().replace(/;\s*$/, '');
  }
  return out as Record<N, string>;
}

/** bytea columns come back as Uint8Array on PGlite and Buffer on pg: normalise to Buffer without copying. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Drops and recreates the schema, then migrates: tests reset a shared database between cases. */
export async function resetDb(db: Db, schema = 'public'): Promise<void> {
  await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema};`);
  await migrate(db);
}

