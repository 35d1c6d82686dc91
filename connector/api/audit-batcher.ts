// Group commit for audit rows of reads: concurrent requests' rows are appended in one transaction, each request answered only once its row is in.
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';

export type AuditWrite = (entry: AuditEntry) => Promise<void>;

/**
 * Rows that arrive while a batch is being written wait for the next batch, so under load one transaction (one lock
 * of the chain head) carries many rows instead of one each. A failing batch is retried row by row, so one bad row
 * fails only its own request.
 */
export function createAuditBatcher(audit: Pick<AuditLog, 'append'>, maxBatch = 500): AuditWrite {
  let queue: Array<{ entry: AuditEntry; resolve: () => void; reject: (err: unknown) => void }> = [];
  let writing = false;

  const drain = async (): Promise<void> => {
    writing = true;
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      try {
        await audit.append(batch.map((b) => b.entry));
        for (const b of batch) b.resolve();
      } catch {
        for (const b of batch) {
          try {
            await audit.append(b.entry);
            b.resolve();
          } catch (err) {
            b.reject(err);
          }
        }
      }
    }
    writing = false;
  };

  return (entry) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ entry, resolve, reject });
      // The first row waits one turn of the event loop so that rows of requests arriving together share the batch.
      if (!writing) {
        writing = true;
        setImmediate(() => void drain());
      }
    });
}
