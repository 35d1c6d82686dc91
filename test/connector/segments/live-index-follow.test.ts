// The live segment index sees consent changes another process records (the unsubscribe page of `outreach serve`, a Salesforce pull) within seconds, without a rebuild.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type App } from '../../../connector/app.js';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { loadConfig } from '../../../connector/config.js';
import { followAuthorizationHistory } from '../../../connector/consent/history-follower.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import type { LiveSegmentIndex } from '../../../connector/segments/live-index.js';
import { SegmentRepository } from '../../../connector/segments/segment-repository.js';
import { SegmentService } from '../../../connector/segments/segment-service.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { hasPostgres, postgresUrl, storeKinds } from '../../support/postgres.js';
import { syntheticFacts } from '../store/synthetic-facts.js';

const setup = { name: 'test-setup', role: 'admin' };
const unsubscribe = { name: 'unsubscribe', role: 'system' };

/** Waits on the index's own looks at the history until `done` holds, failing once `boundMs` have passed. */
async function untilFollowed(live: LiveSegmentIndex, done: () => Promise<boolean>, boundMs: number): Promise<number> {
  const started = Date.now();
  while (!(await done())) {
    const left = boundMs - (Date.now() - started);
    if (left <= 0) throw new Error(`the segment index did not catch up within ${boundMs} ms`);
    let off = () => {};
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => (off = live.onFollowed(() => resolve()))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
    ]);
    off();
    clearTimeout(timer);
  }
  return Date.now() - started;
}

describe.each(storeKinds)('a live segment index on %s follows consent changes of other processes', (kind) => {
  const home = mkdtempSync(join(tmpdir(), 'outreach-follow-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    OUTREACH_HOME: home,
    OUTREACH_LOG_LEVEL: 'silent',
    ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
  });
  let app: App;
  /** The other process: a second app on the same PostgreSQL schema, or on PGlite a second registry over the same database. */
  let other: { consent: ConsentRegistry; close(): Promise<void> };
  let ids: number[];
  let segments: SegmentService;

  beforeAll(async () => {
    app = await openApp(config, { resealInBackground: false });
    ids = await app.facts.upsertFacts(Array.from({ length: 4 }, (_, i) => syntheticFacts(i + 1)));
    for (const patientId of ids) {
      await app.consent.grant({ patientId, purpose: 'marketing', channel: 'email', source: 'signed-form', sourceRef: 'form-1', textVersion: 'mkt-v1' }, setup);
    }
    if (kind === 'postgres') {
      const second = await openApp(config, { resealInBackground: false });
      other = { consent: second.consent, close: () => second.close() };
    } else {
      other = { consent: new ConsentRegistry({ db: app.db, cipher: app.cipher, audit: app.audit }), close: async () => undefined };
    }
    segments = new SegmentService({ index: async () => (await app.segmentIndex()).index, repository: new SegmentRepository(app.db), audit: (e) => app.audit.append(e) });
  }, 120_000);
  afterAll(async () => {
    await other?.close();
    if (kind === 'postgres') await app?.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await app?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const marketable = async () => (await segments.count({ all: [{ type: 'authorized', purpose: 'marketing' }, { type: 'notSuppressed' }] })).count;

  it('counts an opt-out taken by another process within a few seconds, on the same index (no rebuild)', async () => {
    const live = await app.segmentIndex();
    const index = live.index;
    expect(await marketable()).toBe(4);
    // Nothing of this process hears it: only the index's look at the authorization history can.
    await other.consent.optOut({ patientId: ids[0]!, channel: 'email', source: 'unsubscribe-link', sourceRef: 'token-1' }, unsubscribe);
    const took = await untilFollowed(live, async () => (await marketable()) === 3, 10_000);
    expect(took).toBeLessThan(10_000);
    await other.consent.revoke({ patientId: ids[1]!, purpose: 'marketing', channel: 'email', source: 'crm' }, { name: 'salesforce', role: 'system' });
    await untilFollowed(live, async () => (await marketable()) === 2, 10_000);
    expect((await app.segmentIndex()).index).toBe(index);
    // A change made here is applied at once, as before.
    await app.consent.optIn({ patientId: ids[0]!, channel: 'email', source: 'admin' }, setup);
    await live.settled();
    expect(await marketable()).toBe(3);
  }, 60_000);

  it('stops following when its app closes', async () => {
    // An app of its own (PGlite on disk is one process's): it follows every 2 s like the first one until it closes.
    const ownHome = mkdtempSync(join(tmpdir(), 'outreach-follow-'));
    const closing = await openApp(loadConfig({ OUTREACH_HOME: ownHome, OUTREACH_LOG_LEVEL: 'silent' }), { resealInBackground: false });
    const live = await closing.segmentIndex();
    let looks = 0;
    live.onFollowed(() => looks++);
    await untilFollowed(live, async () => looks > 0, 10_000);
    await closing.close();
    const after = looks;
    // Two looks of the first app span at least one interval of the closed one.
    const first = await app.segmentIndex();
    let firstLooks = 0;
    const off = first.onFollowed(() => firstLooks++);
    await untilFollowed(first, async () => firstLooks >= 2, 10_000);
    off();
    expect(looks).toBe(after);
    rmSync(ownHome, { recursive: true, force: true });
  }, 60_000);

  it('does not follow with OUTREACH_CONSENT_FOLLOW_MS at 0: its counts keep an opt-out of another process out while the default app follows', async () => {
    // An app of its own with following off; the other process is a second registry over its database, which its index cannot hear.
    const offHome = mkdtempSync(join(tmpdir(), 'outreach-follow-'));
    const offApp = await openApp(loadConfig({ OUTREACH_HOME: offHome, OUTREACH_LOG_LEVEL: 'silent', OUTREACH_CONSENT_FOLLOW_MS: '0' }), { resealInBackground: false });
    try {
      expect(offApp.config.consentFollowMs).toBe(0);
      const offIds = await offApp.facts.upsertFacts([syntheticFacts(11), syntheticFacts(12)]);
      for (const patientId of offIds) {
        await offApp.consent.grant({ patientId, purpose: 'marketing', channel: 'email', source: 'signed-form', sourceRef: 'form-1', textVersion: 'mkt-v1' }, setup);
      }
      const offSegments = new SegmentService({ index: async () => (await offApp.segmentIndex()).index, repository: new SegmentRepository(offApp.db), audit: (e) => offApp.audit.append(e) });
      const offMarketable = async () => (await offSegments.count({ all: [{ type: 'authorized', purpose: 'marketing' }, { type: 'notSuppressed' }] })).count;
      const offLive = await offApp.segmentIndex();
      let offLooks = 0;
      offLive.onFollowed(() => offLooks++);
      expect(await offMarketable()).toBe(2);
      const otherOfOff = new ConsentRegistry({ db: offApp.db, cipher: offApp.cipher, audit: offApp.audit });
      await otherOfOff.optOut({ patientId: offIds[0]!, channel: 'email', source: 'unsubscribe-link', sourceRef: 'token-2' }, unsubscribe);
      expect((await offApp.consent.isAllowed(offIds[0]!, 'marketing')).allowed).toBe(false);
      // The window: three looks of the default app (every 2 s) span two of its intervals, in which a following index looks at least once.
      const first = await app.segmentIndex();
      let firstLooks = 0;
      const off = first.onFollowed(() => firstLooks++);
      await untilFollowed(first, async () => firstLooks >= 3, 15_000);
      off();
      expect(offLooks).toBe(0);
      expect(await offMarketable()).toBe(2);
    } finally {
      await offApp.close();
      rmSync(offHome, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.runIf(hasPostgres)('following the authorization history on PostgreSQL', () => {
  let db: Db;
  let writer: Db;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    db = await openDb({ databaseUrl: postgresUrl, schema, poolSize: 2 });
    writer = await openDb({ databaseUrl: postgresUrl, schema, poolSize: 2, migrate: false });
  }, 60_000);
  afterAll(async () => {
    await writer?.close();
    await db?.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db?.close();
  });

  it('reports a change whose id was taken before a later one committed, once its transaction commits', async () => {
    const insert = (tx: { query: Db['query'] }, id: string, patientId: number) =>
      tx.query(
        `INSERT INTO authorization_events (id, patient_id, purpose, channel, status, recorded_at, source, recorded_by) VALUES ($1, $2, '*', 'email', 'revoked', now(), 'unsubscribe-link', 'unsubscribe')`,
        [id, patientId],
      );
    const follower = await followAuthorizationHistory(db);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let early!: string;
    let tookId!: () => void;
    const idTaken = new Promise<void>((resolve) => (tookId = resolve));
    // A slow transaction on another connection takes its id first and commits last.
    const committed = writer.transaction(async (tx) => {
      [{ id: early }] = await tx.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('authorization_events', 'id'))::text AS id`);
      tookId();
      await held;
      await insert(tx, early, 1);
    });
    await idTaken;
    const [{ id: late }] = await db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('authorization_events', 'id'))::text AS id`);
    await insert(db, late!, 2);
    expect(await follower.next()).toEqual([{ id: late, patientId: '2' }]);
    expect(follower.seen(early)).toBe(false);
    release();
    await committed;
    expect(await follower.next()).toEqual([{ id: early, patientId: '1' }]);
    expect(follower.seen(early)).toBe(true);
    expect(await follower.next()).toEqual([]);
  }, 30_000);
});
