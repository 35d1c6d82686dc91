// Audit routes (admin): entries page by page (filtered by actor, action prefix and time) and the hash-chain verification.
import type { App } from '../../app.js';
import { fail } from '../../errors.js';
import { auditedBy, sessionOf, type Handlers } from '../handler.js';

export function auditHandlers(app: App): Handlers {
  return {
    listAudit: async ({ query }, context) => {
      const session = sessionOf(context);
      const after = query.cursor === undefined ? 0n : /^[0-9]{1,19}$/.test(query.cursor) ? BigInt(query.cursor) : undefined;
      if (after === undefined) throw fail('BAD_REQUEST', 'cursor: expected the nextCursor of a previous page', { field: 'cursor' });
      const entries: Array<{ seq: number; at: string; actor: string; action: string; subject: string | null; hash: string }> = [];
      let more = false;
      for await (const row of app.audit.search({
        ...(query.from ? { since: new Date(query.from) } : {}),
        ...(query.to ? { until: new Date(query.to) } : {}),
        ...(query.action ? { actionPrefix: query.action } : {}),
      })) {
        if (BigInt(row.seq) <= after) continue;
        if (query.actor !== undefined && row.actor !== query.actor) continue;
        if (entries.length === query.limit) {
          more = true;
          break;
        }
        entries.push({
          seq: Number(row.seq),
          at: row.at.toISOString(),
          actor: row.actor,
          action: row.action,
          // The object touched; a patient appears only as the log's keyed blind id.
          subject: row.entity ?? (row.patientBlind ? `patient-blind/${row.patientBlind}` : null),
          hash: row.hash,
        });
      }
      await app.audit.append(auditedBy(session, { action: 'audit.read', purpose: 'administration' }));
      return { entries, nextCursor: more ? String(entries[entries.length - 1]!.seq) : null };
    },
    verifyAudit: async (_request, context) => {
      const session = sessionOf(context);
      const result = await app.audit.verify();
      await app.audit.append(auditedBy(session, { action: 'audit.verify', purpose: 'administration', outcome: result.ok ? 'success' : 'failure' }));
      return { ok: result.ok, entries: result.rows, firstBadSeq: result.ok ? null : Number(result.firstBadSeq) };
    },
  };
}
