// The audit group commit: concurrent read audits share a transaction, every caller waits for its own row, a bad row fails alone.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAuditLog, type AuditEntry, type AuditLog } from '../../../connector/audit/audit-log.js';
import { createAuditBatcher } from '../../../connector/api/audit-batcher.js';
import { openTestStore } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';

let store: Awaited<ReturnType<typeof openTestStore>>;
let audit: AuditLog;

beforeAll(async () => {
  store = await openTestStore('pglite');
  audit = createAuditLog({ db: store.db, cipher: createTestCipher() });
});
afterAll(async () => store?.close());

it('writes 200 concurrent rows in a few transactions, in arrival order, and the chain verifies', async () => {
  let appends = 0;
  const counted: Pick<AuditLog, 'append'> = { append: (entries, tx) => (appends++, audit.append(entries, tx)) };
  const write = createAuditBatcher(counted);
  const entry = (i: number): AuditEntry => ({ actor: `user${i % 3}`, role: 'marketer', action: 'patient.lookup', patientId: i + 1 });
  await Promise.all(Array.from({ length: 200 }, (_, i) => write(entry(i))));
  expect(appends).toBeLessThan(10);
  const rows = [];
  for await (const r of audit.search({ actionPrefix: 'patient.' })) rows.push(r);
  expect(rows.map((r) => r.patientBlind)).toEqual(Array.from({ length: 200 }, (_, i) => audit.patientBlind(i + 1)));
  expect(await audit.verify()).toMatchObject({ ok: true, rows: 200 });
});

it('fails only the request whose row is malformed', async () => {
  const write = createAuditBatcher(audit);
  const results = await Promise.allSettled([
    write({ actor: 'alice', role: 'marketer', action: 'consent.read', patientId: 7 }),
    write({ actor: 'alice', role: 'marketer', action: 'Not An Action' }),
    write({ actor: 'bob', role: 'clinician', action: 'consent.read', patientId: 8 }),
  ]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'BAD_REQUEST' });
  expect(await audit.verify()).toMatchObject({ ok: true, rows: 202 });
});
