// Archiving a saved segment and its stored last count: hidden from lists, every version kept, counts of older versions not shown; on PGlite and PostgreSQL.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SegmentRepository } from '../../../connector/segments/segment-repository.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';

const women = { type: 'gender', value: 'female' };
const adults = { all: [{ type: 'gender', value: 'female' }, { type: 'age', min: 18 }] };

describe.each(storeKinds)('segment archive and last count on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let segments: SegmentRepository;
  beforeAll(async () => {
    store = await openTestStore(kind);
    segments = new SegmentRepository(store.db);
  });
  afterAll(async () => store?.close());
  beforeEach(async () => {
    await store.db.exec('TRUNCATE segment_snapshot_members, segment_snapshots, segment_versions, segments RESTART IDENTITY CASCADE');
  });

  it('stores the last count of the current version, keeps the newest, and drops it when the definition changes', async () => {
    const v1 = await segments.save({ name: 'Women', definition: women, actor: 'maria' });
    expect((await segments.list())[0]!.lastCount).toBeUndefined();
    await segments.recordCount(v1.versionId, 41, new Date('2026-06-01T10:00:00Z'));
    await segments.recordCount(v1.versionId, 42, new Date('2026-06-01T11:00:00Z'));
    // A count that finished later but was taken earlier does not replace a newer one.
    await segments.recordCount(v1.versionId, 40, new Date('2026-06-01T09:00:00Z'));
    expect((await segments.list())[0]!.lastCount).toEqual({ count: 42, countedAt: '2026-06-01T11:00:00.000Z' });
    const v2 = await segments.save({ name: 'Women', definition: adults, actor: 'maria' });
    expect((await segments.list())[0]!.lastCount).toBeUndefined();
    await segments.recordCount(v2.versionId, 30, new Date('2026-06-01T12:00:00Z'));
    expect((await segments.list())[0]!.lastCount).toEqual({ count: 30, countedAt: '2026-06-01T12:00:00.000Z' });
  });

  it('archives a segment: gone from the list, its versions and snapshots kept, its name not reusable, archived once', async () => {
    const v1 = await segments.save({ name: 'Women', definition: women, actor: 'maria' });
    const v2 = await segments.save({ name: 'Women', definition: adults, actor: 'maria' });
    await segments.save({ name: 'Everyone else', definition: { type: 'gender', value: 'male' }, actor: 'maria' });
    const snapshot = await segments.insertSnapshot({ version: v1, asOf: '2026-06-01', memberIds: [3, 1, 2], reason: 'campaign/7', actor: 'carl' });

    expect(await segments.archive('Women', 'maria')).toEqual({ id: v1.segmentId });
    expect((await segments.list()).map((s) => s.name)).toEqual(['Everyone else']);
    // What campaigns and approvals hold stays readable.
    expect(await segments.getVersion(v1.versionId)).toMatchObject({ name: 'Women', version: 1, definitionHash: v1.definitionHash });
    expect((await segments.versions('Women')).map((v) => v.versionId)).toEqual([v1.versionId, v2.versionId]);
    expect(await segments.getSnapshot(snapshot.id)).toMatchObject({ memberCount: 3, segmentVersionId: v1.versionId });
    expect(await segments.snapshotMembers(snapshot.id)).toEqual([1, 2, 3]);

    await expect(segments.save({ name: 'Women', definition: women, actor: 'maria' })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await segments.versions('Women')).length).toBe(2);
    await expect(segments.archive('Women', 'maria')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(segments.archive('Nobody', 'maria')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const [row] = await store.db.query<{ archived_by: string; archived_at: Date }>(`SELECT archived_by, archived_at FROM segments WHERE name = 'Women'`);
    expect(row!.archived_by).toBe('maria');
    expect(row!.archived_at).toBeInstanceOf(Date);
  });
});
