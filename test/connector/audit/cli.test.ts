// `outreach audit verify|export`: an intact chain passes, a tampered one fails naming the row, exports are AuditEvent NDJSON.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAuditCommands } from '../../../connector/audit/cli.js';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { cliRunner } from '../../support/cli-runner.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';

describe('audit commands', () => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let dir: string;
  let run: ReturnType<typeof cliRunner>;
  let audit: ReturnType<typeof createAuditLog>;
  beforeAll(async () => {
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    dir = mkdtempSync(join(tmpdir(), 'outreach-audit-'));
    audit = createAuditLog({ db: store.db, cipher: createTestCipher() });
    run = cliRunner([registerAuditCommands], () => ({ db: store.db, audit }));
    await audit.append([
      { actor: 'sync', role: 'system', action: 'fhir.sync', purpose: 'treatment', patientId: 7 },
      { actor: 'mara', role: 'marketer', action: 'campaign.send', purpose: 'marketing', patientId: 7, entity: 'campaign/3' },
      { actor: 'cleo', role: 'clinician', action: 'preview.phi', purpose: 'treatment', patientId: 8, entity: 'campaign/3' },
    ]);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await store.close();
  });

  it('exports one patient as an accounting of disclosures in AuditEvent NDJSON', async () => {
    const out = join(dir, 'p7.ndjson');
    const result = await run(['audit', 'export', '--patient', '7', '--out', out]);
    expect(result.out).toEqual({ file: out, events: 2 });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const events = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    expect(events.map((e) => [e.subtype?.[0]?.code, e.action])).toEqual([
      ['fhir.sync', 'C'],
      ['campaign.send', 'E'],
    ]);
    expect(events.every((e) => e.entity?.[0]?.what?.identifier?.value === audit.patientBlind(7))).toBe(true);
    const toStdout = await run(['audit', 'export', '--action', 'preview.']);
    expect(toStdout.out).toMatchObject([{ resourceType: 'AuditEvent', subtype: [{ code: 'preview.phi' }] }]);
  });

  it('verifies an intact chain, including its own rows', async () => {
    const ok = await run(['audit', 'verify']);
    expect(ok.exitCode).toBe(0);
    expect(ok.out).toMatchObject({ ok: true });
    expect(Number(ok.out.rows)).toBeGreaterThanOrEqual(5);
    expect((await run(['audit', 'verify'], false)).text).toMatch(/^audit chain intact: \d+ rows, head \d+ [0-9a-f]{64}$/);
  });

  it('fails with AUDIT_CHAIN_BROKEN naming the first bad row after tampering', async () => {
    await store.db.transaction(async (tx) => {
      await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
      await tx.query(`UPDATE audit_log SET purpose = 'treatment' WHERE seq = 2`);
      await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
    });
    const bad = await run(['audit', 'verify']);
    expect(bad.exitCode).toBe(1);
    expect(bad.out).toEqual({ error: { code: 'AUDIT_CHAIN_BROKEN', message: 'first bad row 2: audit row 2 was changed after it was written' } });
  });
});
