// Fast reset between tests: empties the named tables (append-only triggers off for the statement) instead of re-migrating.
import type { Db } from '../../connector/store/db.js';

/** Empties the tables and restarts their identities; resets the audit chain head when the audit log is among them. */
export async function truncateTables(db: Db, tables: readonly string[]): Promise<void> {
  for (const t of tables) if (!/^[a-z_][a-z0-9_]*$/.test(t)) throw new Error(`not a table name: ${t}`);
  const audit = tables.includes('audit_log');
  await db.transaction(async (tx) => {
    if (audit) await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate');
    await tx.exec(`TRUNCATE ${tables.join(', ')} RESTART IDENTITY CASCADE`);
    if (audit) {
      await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate');
      await tx.exec(`UPDATE audit_chain_head SET seq = 0, hash = decode(repeat('00', 32), 'hex'), mac = NULL`);
    }
  });
}
