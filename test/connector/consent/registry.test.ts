// The authorization registry: the dispatch gate, channel opt-outs, expiry, sealed evidence, append-only history, listeners.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry, type ConsentChange } from '../../../connector/consent/registry.js';
import type { Db } from '../../../connector/store/db.js';
import { openKeyring, sealedVersion } from '../../../connector/store/keyring.js';
import { runResealJobs } from '../../../connector/store/reseal-job.js';
import { phi, reveal } from '../../../fhir/phi.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { truncateTables } from '../../support/truncate-tables.js';

const day = 86_400_000;
const t0 = new Date('2026-03-01T12:00:00.000Z');
const admin = { name: 'ada', role: 'admin' };

describe.each(storeKinds)('authorization registry on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let audit: AuditLog;
  let registry: ConsentRegistry;
  let now: Date;
  const cipher = createTestCipher();

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await truncateTables(db, ['authorization_events', 'audit_log']);
    now = t0;
    audit = createAuditLog({ db, cipher, clock: () => now });
    registry = new ConsentRegistry({ db, cipher, audit, clock: () => now });
  });

  const marketingGrant = (patientId: number, extra: Record<string, unknown> = {}) =>
    registry.grant({ patientId, purpose: 'marketing', channel: 'email', source: 'signed-form', sourceRef: 'form-88', textVersion: 'hipaa-mkt-v3', ...extra }, admin);

  it('denies marketing without an authorization and allows it after a grant, naming the text version', async () => {
    expect(await registry.isAllowed(1, 'marketing', 'email', now)).toEqual({ allowed: false, reason: 'no-authorization', consentVersion: null, authorizationId: null });
    const row = await marketingGrant(1);
    expect(await registry.isAllowed(1, 'marketing', 'email', now)).toEqual({
      allowed: true,
      reason: 'authorized',
      consentVersion: 'hipaa-mkt-v3',
      authorizationId: row.id,
    });
    expect((await registry.isAllowed(2, 'marketing')).allowed).toBe(false);
  });

  it('refuses a marketing grant without the version of the authorization text', async () => {
    await expect(registry.grant({ patientId: 1, purpose: 'marketing', channel: 'email', source: 'admin' }, admin)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      details: { field: 'textVersion' },
    });
    await expect(registry.isAllowed('1 OR 1=1', 'marketing')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(registry.isAllowed(1, 'telemarketing' as 'marketing')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('allows treatment reminders without an authorization until their purpose is revoked', async () => {
    expect(await registry.isAllowed(1, 'appointment-reminder')).toMatchObject({ allowed: true, reason: 'treatment-permitted' });
    await registry.revoke({ patientId: 1, purpose: 'appointment-reminder', channel: 'email', source: 'crm', sourceRef: 'sf-003' }, admin);
    expect(await registry.isAllowed(1, 'appointment-reminder')).toMatchObject({ allowed: false, reason: 'revoked' });
    expect(await registry.isAllowed(1, 'refill-reminder')).toMatchObject({ allowed: true });
  });

  it('stops marketing only when marketing is revoked', async () => {
    await marketingGrant(1);
    await registry.revoke({ patientId: 1, purpose: 'marketing', channel: 'email', source: 'admin' }, admin);
    expect(await registry.isAllowed(1, 'marketing')).toMatchObject({ allowed: false, reason: 'revoked', consentVersion: null });
    expect(await registry.isAllowed(1, 'appointment-reminder')).toMatchObject({ allowed: true });
    expect(await registry.isAllowed(1, 'screening-reminder')).toMatchObject({ allowed: true });
  });

  it('stops every purpose on the channel at once when the patient unsubscribes, reminders included', async () => {
    await marketingGrant(1);
    await registry.optOut({ patientId: 1, channel: 'email', source: 'unsubscribe-link', sourceRef: 'token-7' }, { name: 'unsubscribe', role: 'system' });
    for (const purpose of ['marketing', 'appointment-reminder', 'refill-reminder', 'treatment-reminder'] as const) {
      expect(await registry.isAllowed(1, purpose)).toMatchObject({ allowed: false, reason: 'channel-opted-out' });
    }
    // Lifting the opt-out restores what was authorized before, and grants nothing new.
    await registry.optIn({ patientId: 1, channel: 'email', source: 'admin' }, admin);
    expect(await registry.isAllowed(1, 'marketing')).toMatchObject({ allowed: true, consentVersion: 'hipaa-mkt-v3' });
    await registry.optIn({ patientId: 2, channel: 'email', source: 'admin' }, admin);
    expect(await registry.isAllowed(2, 'marketing')).toMatchObject({ allowed: false, reason: 'no-authorization' });
  });

  it('expires a grant at its end, and does not honour it before it starts', async () => {
    await marketingGrant(1, { grantedAt: new Date(t0.getTime() + day), expiresAt: new Date(t0.getTime() + 30 * day) });
    expect(await registry.isAllowed(1, 'marketing', 'email', t0)).toMatchObject({ allowed: false, reason: 'not-yet-valid' });
    expect(await registry.isAllowed(1, 'marketing', 'email', new Date(t0.getTime() + day))).toMatchObject({ allowed: true });
    expect(await registry.isAllowed(1, 'marketing', 'email', new Date(t0.getTime() + 30 * day - 1))).toMatchObject({ allowed: true });
    expect(await registry.isAllowed(1, 'marketing', 'email', new Date(t0.getTime() + 30 * day))).toMatchObject({ allowed: false, reason: 'expired' });
    await registry.expire({ patientId: 2, purpose: 'marketing', channel: 'email', source: 'admin' }, admin);
    expect(await registry.isAllowed(2, 'marketing')).toMatchObject({ allowed: false, reason: 'expired' });
  });

  it('answers the batch gate the same as the single gate, for patients with and without rows', async () => {
    await marketingGrant(1);
    await marketingGrant(2);
    await registry.optOut({ patientId: 2, channel: 'email', source: 'unsubscribe-link' }, admin);
    await registry.revoke({ patientId: 3, purpose: 'marketing', channel: 'email', source: 'admin' }, admin);
    const ids = [1, 2, 3, 4, '1'];
    const batch = await registry.isAllowedMany(ids, 'marketing', 'email', now);
    expect([...batch.keys()]).toEqual(['1', '2', '3', '4']);
    for (const id of [1, 2, 3, 4]) expect(batch.get(String(id))).toEqual(await registry.isAllowed(id, 'marketing', 'email', now));
    expect([...batch.values()].map((d) => d.reason)).toEqual(['authorized', 'channel-opted-out', 'revoked', 'no-authorization']);
  });

  it('keeps the history append-only: every change a new row, deletes and rewrites refused', async () => {
    await marketingGrant(1);
    now = new Date(t0.getTime() + 1000);
    await registry.revoke({ patientId: 1, purpose: 'marketing', channel: 'email', source: 'admin' }, admin);
    now = new Date(t0.getTime() + 2000);
    await marketingGrant(1, { textVersion: 'hipaa-mkt-v4' });
    const history = await registry.history(1);
    expect(history.map((r) => [r.status, r.textVersion])).toEqual([
      ['active', 'hipaa-mkt-v3'],
      ['revoked', null],
      ['active', 'hipaa-mkt-v4'],
    ]);
    expect((await registry.current(1)).map((r) => r.textVersion)).toEqual(['hipaa-mkt-v4']);
    await expect(db.query('DELETE FROM authorization_events')).rejects.toThrow(/append-only/);
    await expect(db.query(`UPDATE authorization_events SET status = 'active' WHERE status = 'revoked'`)).rejects.toThrow(/append-only/);
    expect((await registry.history(1)).length).toBe(3);
  });

  it('seals evidence and reasons, keeps the evidence hash, and refuses a sealed value moved to another row', async () => {
    const form = phi('Signed authorization form: Jane Canary, DOB 1961-04-12, consents to marketing email');
    const a = await marketingGrant(1, { evidence: form });
    const b = await registry.revoke({ patientId: 1, purpose: 'marketing', channel: 'email', source: 'admin', reason: phi('Jane Canary called to stop') }, admin);
    expect(a.evidenceHash).toBe(createHash('sha256').update(reveal(form)).digest('hex'));
    const dump = JSON.stringify(await db.query('SELECT encode(evidence_sealed, \'escape\') AS e, encode(reason_sealed, \'escape\') AS r FROM authorization_events'));
    expect(dump).not.toContain('Canary');
    expect(reveal((await registry.openEvidence(a))!)).toBe(reveal(form));
    expect(reveal((await registry.openReason(b))!)).toBe('Jane Canary called to stop');
    // The reseal job may rewrite sealed columns; a ciphertext from another row does not open there.
    await db.query('UPDATE authorization_events SET evidence_sealed = (SELECT evidence_sealed FROM authorization_events WHERE id = $1) WHERE id = $2', [a.id, b.id]);
    await expect(registry.openEvidence(b)).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
  });

  it('writes an audit row for every change, with the patient as a blind id', async () => {
    await marketingGrant(5);
    await registry.optOut({ patientId: 5, channel: 'email', source: 'unsubscribe-link' }, { name: 'unsubscribe', role: 'system' });
    const rows = [];
    for await (const r of audit.search({ patientId: 5 })) rows.push(r);
    expect(rows.map((r) => [r.actor, r.action, r.purpose, r.entity?.split('/')[0]])).toEqual([
      ['ada', 'consent.grant', 'marketing', 'authorization'],
      ['unsubscribe', 'consent.opt-out', null, 'authorization'],
    ]);
    expect(await audit.verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it('tells listeners after the change committed; a failing listener changes nothing', async () => {
    const heard: ConsentChange[][] = [];
    registry.onConsentChanged(() => {
      throw new Error('listener bug');
    });
    const off = registry.onConsentChanged(async (changes) => {
      heard.push([...changes]);
      // The change is visible to the gate by the time listeners run.
      expect((await registry.isAllowed(changes[0]!.patientId, 'marketing')).reason).toBe('channel-opted-out');
    });
    await registry.optOut({ patientId: 9, channel: 'email', source: 'unsubscribe-link' }, admin);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject([{ patientId: '9', purpose: '*', channel: 'email', status: 'revoked', source: 'unsubscribe-link' }]);
    off();
    await registry.optIn({ patientId: 9, channel: 'email', source: 'admin' }, admin);
    expect(heard).toHaveLength(1);
  });

  it('records a batch atomically: one invalid change and nothing is written', async () => {
    await expect(
      registry.record(
        [
          { patientId: 1, purpose: 'marketing', channel: 'email', status: 'active', source: 'crm', textVersion: 'v1' },
          { patientId: 2, purpose: '*', channel: 'email', status: 'expired', source: 'crm' },
        ],
        admin,
      ),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await registry.history(1)).toEqual([]);
  });

  it('with the real keyring, reseals evidence in place after a rotation (the trigger allows exactly that) and the audit chain still verifies', async () => {
    const home = mkdtempSync(join(tmpdir(), 'outreach-consent-keys-'));
    try {
      const { keyring } = await openKeyring(db, { home });
      const keyedAudit = createAuditLog({ db, cipher: keyring });
      const keyed = new ConsentRegistry({ db, cipher: keyring, audit: keyedAudit });
      const grant = await keyed.grant(
        { patientId: 11, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'v1', evidence: phi('Form signed by Oswin Canary') },
        admin,
      );
      const revoke = await keyed.revoke({ patientId: 11, purpose: 'marketing', channel: 'email', source: 'admin', reason: phi('Oswin Canary asked to stop') }, admin);
      const before = keyring.currentVersion;
      await keyring.rotate();
      expect(await runResealJobs(db, keyring)).toBeGreaterThanOrEqual(2);
      const [row] = await db.query<{ evidence_sealed: Uint8Array }>('SELECT evidence_sealed FROM authorization_events WHERE id = $1', [grant.id]);
      expect(keyring.currentVersion).not.toBe(before);
      expect(sealedVersion(row!.evidence_sealed)).toBe(keyring.currentVersion);
      expect(reveal((await keyed.openEvidence(grant))!)).toBe('Form signed by Oswin Canary');
      expect(reveal((await keyed.openReason(revoke))!)).toBe('Oswin Canary asked to stop');
      expect((await keyed.history(11)).map((r) => r.status)).toEqual(['active', 'revoked']);
      expect(await keyedAudit.verify()).toMatchObject({ ok: true, rows: 2 });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it.runIf(kind === 'postgres')('answers the gate from the index, not a scan', async () => {
    await registry.record(
      Array.from({ length: 3000 }, (_, i) => ({
        patientId: 1 + (i % 1000),
        purpose: i % 2 ? ('marketing' as const) : ('appointment-reminder' as const),
        channel: 'email' as const,
        status: 'revoked' as const,
        source: 'crm' as const,
      })),
      admin,
    );
    await db.exec('ANALYZE authorization_events');
    const plan = JSON.stringify(
      await db.query(`EXPLAIN (FORMAT JSON) ${(await import('../../../connector/store/db.js')).loadQueries(new URL('../../../connector/consent/queries.sql', import.meta.url), ['gateOne']).gateOne}`, [
        '17',
        'email',
        'marketing',
      ]),
    );
    expect(plan).toContain('authorization_events_current');
    expect(plan).not.toContain('Seq Scan');
  });
});
