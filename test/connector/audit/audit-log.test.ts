// The audit log: a hash chain that refuses changes, serialises concurrent appends, and names the first tampered row.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditEntry, type AuditLog } from '../../../connector/audit/audit-log.js';
import { chainHash } from '../../../connector/audit/chain.js';
import { toAuditEvent, patientBlindSystem } from '../../../connector/audit/audit-event.js';
import type { Db, Queryable } from '../../../connector/store/db.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { truncateTables } from '../../support/truncate-tables.js';

const entry = (i: number): AuditEntry => ({
  actor: i % 2 ? 'alice' : 'sync',
  role: i % 2 ? 'marketer' : 'system',
  action: i % 3 ? 'campaign.send' : 'fhir.sync',
  purpose: i % 3 ? 'marketing' : 'treatment',
  patientId: 1000 + i,
  entity: `campaign/${i}`,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
});

describe.each(storeKinds)('audit log on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let audit: AuditLog;
  const cipher = createTestCipher();

  /** Tampering as the table owner would: with the append-only trigger switched off for the duration. */
  const tamper = (fn: (tx: Queryable) => Promise<void>) =>
    db.transaction(async (tx) => {
      await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
      await fn(tx);
      await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
    });

  const seed = async (n: number) => audit.append(Array.from({ length: n }, (_, i) => entry(i + 1)));

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await truncateTables(db, ['audit_log']);
    audit = createAuditLog({ db, cipher });
  });

  it('verifies an empty log and an untouched chain, and links every row to the one before', async () => {
    expect(await audit.verify()).toMatchObject({ ok: true, rows: 0 });
    const rows = await seed(10);
    expect(rows.map((r) => r.seq)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(rows[0]!.prevHash).toBe('00'.repeat(32));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    const more = await audit.append(entry(11));
    expect(more[0]!.prevHash).toBe(rows[9]!.hash);
    expect(await audit.verify()).toEqual({ ok: true, rows: 11, head: { seq: '11', hash: more[0]!.hash } });
  });

  it('stores a keyed blind id for the patient, never the patient id', async () => {
    await audit.append({ actor: 'bob', role: 'clinician', action: 'preview.phi', purpose: 'treatment', patientId: 424242 });
    const [row] = await db.query<Record<string, unknown>>('SELECT * FROM audit_log');
    expect(row!.patient_blind).toBe(audit.patientBlind(424242));
    expect(JSON.stringify(row)).not.toContain('424242');
    expect(audit.patientBlind(424242)).not.toBe(createTestCipher().blindIndex('patient', '424242').toString('hex'));
  });

  it('refuses free text where only identifiers belong', async () => {
    await expect(audit.append({ actor: 'Jane Doe, DOB 1970-01-01', role: 'admin', action: 'user.create' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(audit.append({ actor: 'alice', role: 'admin', action: 'viewed chart of Jane' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(audit.append({ actor: 'alice', role: 'admin', action: 'user.create', entity: 'note: diabetic' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    expect(await db.query('SELECT * FROM audit_log')).toEqual([]);
  });

  it('refuses UPDATE, DELETE and TRUNCATE in the database itself', async () => {
    await seed(3);
    await expect(db.query(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`)).rejects.toThrow(/append-only/);
    await expect(db.query('DELETE FROM audit_log WHERE seq = 3')).rejects.toThrow(/append-only/);
    await expect(db.exec('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
    await expect(db.query('DELETE FROM audit_chain_head')).rejects.toThrow(/append-only/);
    expect(await db.query('SELECT count(*)::int AS n FROM audit_log')).toEqual([{ n: 3 }]);
    expect(await audit.verify()).toMatchObject({ ok: true, rows: 3 });
  });

  it('serialises concurrent appends into one unbroken chain', async () => {
    await Promise.all(Array.from({ length: 24 }, (_, i) => audit.append([entry(i), entry(i + 100)])));
    const result = await audit.verify();
    expect(result).toMatchObject({ ok: true, rows: 48, head: { seq: '48' } });
  });

  it('commits audit rows with the caller transaction, and rolls them back with it', async () => {
    await expect(
      db.transaction(async (tx) => {
        await audit.append(entry(1), tx);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await audit.head()).toMatchObject({ seq: '0' });
    await db.transaction((tx) => audit.append(entry(2), tx));
    expect(await audit.verify()).toMatchObject({ ok: true, rows: 1 });
  });

  it('names a changed row', async () => {
    await seed(10);
    await tamper(async (tx) => void (await tx.query(`UPDATE audit_log SET outcome = 'denied' WHERE seq = 4`)));
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '4', problem: 'altered' });
  });

  it('names a deleted row', async () => {
    await seed(10);
    await tamper(async (tx) => void (await tx.query('DELETE FROM audit_log WHERE seq = 6')));
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '6', problem: 'missing' });
  });

  it('names the first of two reordered rows', async () => {
    await seed(10);
    await tamper(async (tx) => {
      await tx.query('UPDATE audit_log SET seq = -1 WHERE seq = 3');
      await tx.query('UPDATE audit_log SET seq = 3 WHERE seq = 5');
      await tx.query('UPDATE audit_log SET seq = 5 WHERE seq = -1');
    });
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '3', problem: 'broken-link' });
  });

  it('detects a truncated tail through the chain head', async () => {
    await seed(10);
    await tamper(async (tx) => void (await tx.query('DELETE FROM audit_log WHERE seq > 7')));
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '8', problem: 'truncated' });
  });

  it('names the re-hashed row when the tail is truncated, one row rewritten and re-hashed, and the head moved', async () => {
    await seed(10);
    await tamper(async (tx) => {
      await tx.query('DELETE FROM audit_log WHERE seq > 7');
      const [prev] = await tx.query<{ hash: Uint8Array }>('SELECT hash FROM audit_log WHERE seq = 6');
      const [row] = await tx.query<{ at: Date }>('SELECT at FROM audit_log WHERE seq = 7');
      const forged = chainHash(prev!.hash, {
        seq: '7', at: row!.at, actor: 'mallory', role: 'admin', action: 'audit.export', purpose: null, patientBlind: null, entity: null, outcome: 'success',
      });
      await tx.query(`UPDATE audit_log SET actor = 'mallory', role = 'admin', action = 'audit.export', purpose = NULL, patient_blind = NULL,
        entity = NULL, outcome = 'success', hash = $1 WHERE seq = 7`, [forged]);
      await tx.query('UPDATE audit_chain_head SET seq = 7, hash = $1', [forged]);
    });
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '7', problem: 'forged-hash' });
  });

  it('detects a head moved back to hide removed rows', async () => {
    await seed(10);
    await tamper(async (tx) => {
      await tx.query('DELETE FROM audit_log WHERE seq > 8');
      await tx.query('UPDATE audit_chain_head SET seq = 8, hash = (SELECT hash FROM audit_log WHERE seq = 8)');
    });
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: '9', problem: 'head-forged' });
  });

  it('exports rows as FHIR AuditEvents, filtered by patient, time and action', async () => {
    await seed(9);
    const all = [];
    for await (const r of audit.search()) all.push(r);
    expect(all).toHaveLength(9);
    const forPatient = [];
    for await (const r of audit.search({ patientId: 1003 })) forPatient.push(r);
    expect(forPatient.map((r) => r.seq)).toEqual(['3']);
    const sends = [];
    for await (const r of audit.search({ actionPrefix: 'campaign.', since: new Date(Date.UTC(2026, 0, 1, 0, 0, 4)) }, 2)) sends.push(r.seq);
    expect(sends).toEqual(['4', '5', '7', '8']);

    const event = toAuditEvent(all[0]!);
    expect(event).toMatchObject({
      resourceType: 'AuditEvent',
      id: 'audit-1',
      action: 'E',
      outcome: '0',
      recorded: '2026-01-01T00:00:01.000Z',
      type: { code: '110106' },
      subtype: [{ code: 'campaign.send' }],
      purposeOfEvent: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HMARKT' }, { code: 'marketing' }] }],
      agent: [{ who: { identifier: { value: 'alice' } }, requestor: true, role: [{ coding: [{ code: 'marketer' }] }] }],
      entity: [{ what: { identifier: { system: patientBlindSystem, value: audit.patientBlind(1001) } } }, { what: { identifier: { value: 'campaign/1' } } }],
      extension: [{ valueString: all[0]!.hash }],
    });
    expect(JSON.stringify(event)).not.toContain('1001');
    expect(toAuditEvent(all[2]!)).toMatchObject({ action: 'C', type: { code: '110107' }, purposeOfEvent: [{ coding: [{ code: 'TREAT' }, { code: 'treatment' }] }] });
  });
});
