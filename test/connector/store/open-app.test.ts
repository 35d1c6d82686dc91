// Opening the app: the keyring and the facts store are wired in, and a wrong master key stops the start before any change.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openApp } from '../../../connector/app.js';
import { loadConfig } from '../../../connector/config.js';
import { createLogger } from '../../../connector/logger.js';
import { openDb } from '../../../connector/store/db.js';
import { generateMasterKey } from '../../../connector/store/master-key.js';
import { postgresUrl, storeKinds } from '../../support/postgres.js';
import { syntheticFacts } from './synthetic-facts.js';

const silent = createLogger({ level: 'silent' });

describe.each(storeKinds)('openApp on %s', (kind) => {
  const home = mkdtempSync(join(tmpdir(), 'outreach-open-'));
  const schema = `open_${Math.random().toString(36).slice(2, 10)}`;
  const key = generateMasterKey().toString('base64');
  const env = (masterKey: string) => ({
    OUTREACH_HOME: home,
    OUTREACH_MASTER_KEY: masterKey,
    ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
  });
  const rawDb = () => (kind === 'postgres' ? openDb({ databaseUrl: postgresUrl, schema, migrate: false }) : openDb({ dataDir: join(home, 'pglite'), migrate: false }));

  afterAll(async () => {
    if (kind === 'postgres') {
      const db = await rawDb();
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    }
    rmSync(home, { recursive: true, force: true });
  });

  it('wires the keyring and the facts store; a wrong master key fails before migrating or writing anything', async () => {
    const app = await openApp(loadConfig(env(key)), { log: silent, resealInBackground: false });
    const [id] = await app.facts.upsertFacts([syntheticFacts(1)]);
    expect(app.cipher.openText(app.cipher.seal('x', { table: 't', column: 'c', rowId: '1' }), { table: 't', column: 'c', rowId: '1' })).toBe('x');
    expect(app.keyring.currentVersion).toBe(1);
    // Pretend an upgrade brought a migration this store has not applied yet (this one is idempotent).
    await app.db.query("DELETE FROM schema_migrations WHERE name = '003_sealed_row_ids.sql'");
    await app.close();

    await expect(openApp(loadConfig(env(generateMasterKey().toString('base64'))), { log: silent })).rejects.toMatchObject({ code: 'WRONG_MASTER_KEY' });

    const db = await rawDb();
    try {
      expect(await db.query("SELECT name FROM schema_migrations WHERE name = '003_sealed_row_ids.sql'")).toEqual([]);
      expect((await db.query<{ n: number | string }>('SELECT count(*) AS n FROM data_keys'))[0]!.n).toEqual(kind === 'postgres' ? '2' : 2);
    } finally {
      await db.close();
    }

    const again = await openApp(loadConfig(env(key)), { log: silent, resealInBackground: false });
    try {
      expect((await again.facts.readFacts([id!])).get(id!)?.patientId).toBe('pat-1');
      expect(await again.db.query("SELECT name FROM schema_migrations WHERE name = '003_sealed_row_ids.sql'")).toHaveLength(1);
    } finally {
      await again.close();
    }
  }, 180_000);
});
