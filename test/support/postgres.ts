// Test databases: PGlite always, PostgreSQL at 127.0.0.1:5432 where reachable (a failure under CI when it is not).
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { openDb, type Db } from '../../connector/store/db.js';

export const postgresUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const inCi = process.env.CI === 'true' || process.env.CI === '1';

function reachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when PostgreSQL answers. Under CI an unreachable server throws (a failure, not a skip). */
export async function postgresAvailable(): Promise<boolean> {
  const url = new URL(postgresUrl);
  const ok = await reachable(url.hostname, Number(url.port || 5432));
  if (!ok && inCi) throw new Error(`CI requires PostgreSQL at ${url.host} and it is not reachable`);
  if (!ok) process.stderr.write(`\n!!! PostgreSQL at ${url.host} is not reachable: PostgreSQL storage tests are SKIPPED !!!\n\n`);
  return ok;
}

export const hasPostgres = await postgresAvailable();

/** A store on a fresh PostgreSQL schema; `drop()` removes it. */
export async function openTestPostgres(): Promise<{ db: Db; schema: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const db = await openDb({ databaseUrl: postgresUrl, schema, poolSize: 4 });
  return {
    db,
    schema,
    drop: async () => {
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    },
  };
}

/** The store kinds a storage test runs on: PGlite always, PostgreSQL when reachable. */
export const storeKinds: Array<'pglite' | 'postgres'> = hasPostgres ? ['pglite', 'postgres'] : ['pglite'];

/** Opens a test store of `kind`; `reset()` wipes it between tests, `close()` ends it. */
export async function openTestStore(kind: 'pglite' | 'postgres'): Promise<{ db: Db; schema: string; reset: () => Promise<void>; close: () => Promise<void> }> {
  const { resetDb } = await import('../../connector/store/db.js');
  if (kind === 'pglite') {
    const db = await openDb();
    return { db, schema: 'public', reset: () => resetDb(db, 'public'), close: () => db.close() };
  }
  const t = await openTestPostgres();
  return { db: t.db, schema: t.schema, reset: () => resetDb(t.db, t.schema), close: t.drop };
}
