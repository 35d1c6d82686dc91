// Empties the store's own tables between tests (much cheaper than dropping and re-migrating the whole schema).
import type { Db } from '../../../connector/store/db.js';

export async function cleanStore(db: Db): Promise<void> {
  await db.exec(`
    TRUNCATE data_keys, reseal_jobs, reseal_progress, patients, quarantine, sync_state RESTART IDENTITY CASCADE;
    DROP TABLE IF EXISTS t_sealed, t_tokens;
    DELETE FROM sealed_columns WHERE table_name IN ('t_sealed', 't_tokens');
  `);
}
