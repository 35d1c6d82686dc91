// The store connection: migrations run once, transactions roll back, the same SQL on PGlite and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, type Db } from '../../../connector/store/db.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';

describe.each(storeKinds)('store on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());

  it('applies every migration once and records it', async () => {
    const rows = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    expect(rows.map((r) => r.name)).toContain('000_init.sql');
    expect(await migrate(db)).toEqual([]);
  });

  it('rolls a transaction back when it throws', async () => {
    await db.exec('CREATE TABLE IF NOT EXISTS t_probe (n int)');
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t_probe (n) VALUES ($1)', [1]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await db.query('SELECT * FROM t_probe')).toEqual([]);
  });

  it('round-trips bytea and jsonb with parameters', async () => {
    await db.exec('CREATE TABLE IF NOT EXISTS t_types (b bytea, j jsonb)');
    await db.query('INSERT INTO t_types VALUES ($1, $2)', [Buffer.from([1, 2, 3]), JSON.stringify({ a: 1 })]);
    const [row] = await db.query<{ b: Uint8Array; j: { a: number } }>('SELECT b, j FROM t_types');
    expect([...row!.b]).toEqual([1, 2, 3]);
    expect(row!.j).toEqual({ a: 1 });
  });

  it('resets to an empty, migrated schema', async () => {
    await store.reset();
    expect(await db.query(`SELECT to_regclass('t_probe') AS t`)).toEqual([{ t: null }]);
    expect((await db.query('SELECT name FROM schema_migrations')).length).toBeGreaterThan(0);
  });
});
