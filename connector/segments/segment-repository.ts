// Saved segments in the store: named, versioned definitions with their hash, and membership snapshots (ids only).
import { fail } from '../errors.js';
import { loadQueries, type Db, type Queryable } from '../store/db.js';
import { summaryFields, versionedRecords, type SummaryFields, type SummaryRow, type VersionedRecords } from '../store/versioned-records.js';
import { parseSegmentDefinition, type SegmentDefinition } from './definition.js';
import { definitionHash } from './definition-hash.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertSegment',
  'segmentByName',
  'lockSegment',
  'latestVersion',
  'versionByNumber',
  'versionById',
  'insertVersion',
  'listSegments',
  'listVersions',
  'insertSnapshot',
  'insertSnapshotMembers',
  'snapshotById',
  'snapshotMembersPage',
  'archiveSegment',
  'recordCount',
] as const);

export interface SegmentVersion {
  /** segment_versions.id: what a campaign references. */
  versionId: number;
  segmentId: number;
  name: string;
  version: number;
  definition: SegmentDefinition;
  definitionHash: string;
  createdBy: string;
  createdAt: string;
}

export interface SegmentSummary extends SummaryFields {
  definitionHash: string;
  /** The last count or explanation of the latest version, and when; absent before one, or after the definition changed. */
  lastCount?: { count: number; countedAt: string };
}

export interface SegmentSnapshot {
  id: number;
  segmentVersionId: number;
  definitionHash: string;
  asOf: string;
  memberCount: number;
  reason?: string;
  takenBy: string;
  takenAt: string;
}

export interface SaveSegmentInput {
  name: string;
  definition: unknown;
  description?: string;
  actor: string;
}

interface VersionRow {
  id: string | number;
  segment_id: string | number;
  version: number;
  definition: SegmentDefinition | string;
  definition_hash: string;
  created_by: string;
  created_at: Date | string;
  name?: string;
}

const namePattern = /^[\p{L}\p{N}][\p{L}\p{N} ,._:/()&+-]{0,119}$/u;
const snapshotBatch = 10_000;

export class SegmentRepository {
  private readonly records: VersionedRecords<VersionRow>;

  constructor(private readonly db: Db) {
    this.records = versionedRecords<VersionRow>(db, 'segment', {
      byName: q.segmentByName,
      latestVersion: q.latestVersion,
      versionByNumber: q.versionByNumber,
      listVersions: q.listVersions,
      versionById: q.versionById,
      archive: q.archiveSegment,
    });
  }

  /**
   * Saves a definition under `name`: a new segment, or a new version when the definition differs from the latest.
   * Saving the same definition again returns the latest version unchanged (`created: false`).
   */
  async save(input: SaveSegmentInput): Promise<SegmentVersion & { created: boolean }> {
    const name = input.name.trim();
    if (!namePattern.test(name)) throw fail('BAD_REQUEST', 'segment name must be 1-120 letters, digits, spaces or ,._:/()&+-', { field: 'name' });
    const definition = parseSegmentDefinition(input.definition);
    const hash = definitionHash(definition);
    return this.db.transaction(async (tx) => {
      await tx.query(q.insertSegment, [name, input.description ?? null, input.actor]);
      const [segment] = await tx.query<{ id: string | number; archived_at: Date | null }>(q.segmentByName, [name]);
      if (segment!.archived_at) throw fail('CONFLICT', 'an archived segment has this name; choose another name', { field: 'name' });
      const segmentId = Number(segment!.id);
      await tx.query(q.lockSegment, [segmentId]);
      const [latest] = await tx.query<VersionRow>(q.latestVersion, [segmentId]);
      if (latest && latest.definition_hash === hash) return { ...toVersion(latest, name), created: false };
      const [row] = await tx.query<VersionRow>(q.insertVersion, [
        segmentId,
        (latest?.version ?? 0) + 1,
        JSON.stringify(definition),
        hash,
        input.actor,
      ]);
      return { ...toVersion(row!, name), created: true };
    });
  }

  async list(): Promise<SegmentSummary[]> {
    const rows = await this.db.query<
      SummaryRow & {
        definition_hash: string;
        last_count: number | null;
        last_counted_at: Date | string | null;
        last_counted_version_id: string | number | null;
      }
    >(q.listSegments);
    return rows.map((r) => ({
      ...summaryFields(r),
      definitionHash: r.definition_hash,
      // A count of an older version says nothing about the current definition.
      ...(r.last_count !== null && r.last_counted_at !== null && Number(r.last_counted_version_id) === Number(r.version_id)
        ? { lastCount: { count: Number(r.last_count), countedAt: new Date(r.last_counted_at).toISOString() } }
        : {}),
    }));
  }

  /**
   * Archives a segment: it leaves every list (and cannot be saved to again), while its versions and snapshots stay
   * for the campaigns and approvals that name them. NOT_FOUND when there is no live segment of that name.
   */
  async archive(name: string, actor: string, at: Date = new Date()): Promise<{ id: number }> {
    return this.records.archive(name, actor, at);
  }

  /** Stores the count of a segment version as its segment's last count; an older count never replaces a newer one. */
  async recordCount(versionId: number, count: number, at: Date): Promise<void> {
    await this.db.query(q.recordCount, [versionId, count, at]);
  }

  /** A saved segment's latest version, or version `version`; NOT_FOUND when there is none. */
  async get(name: string, version?: number): Promise<SegmentVersion> {
    const { row, name: stored } = await this.records.version(name, version);
    return toVersion(row, stored);
  }

  async versions(name: string): Promise<SegmentVersion[]> {
    const { rows, name: stored } = await this.records.versions(name);
    return rows.map((r) => toVersion(r, stored));
  }

  async getVersion(versionId: number): Promise<SegmentVersion> {
    const row = await this.records.versionById(versionId);
    return toVersion(row, row.name!);
  }

  /** Stores a membership snapshot and its member ids in one transaction (in `tx` when given). */
  async insertSnapshot(
    input: { version: SegmentVersion; asOf: string; memberIds: readonly number[]; reason?: string; actor: string },
    tx?: Queryable,
  ): Promise<SegmentSnapshot> {
    const write = async (t: Queryable): Promise<SegmentSnapshot> => {
      const [row] = await t.query<{ id: string | number; taken_at: Date | string }>(q.insertSnapshot, [
        input.version.versionId,
        input.version.definitionHash,
        input.asOf,
        input.memberIds.length,
        input.reason ?? null,
        input.actor,
      ]);
      const id = Number(row!.id);
      for (let i = 0; i < input.memberIds.length; i += snapshotBatch) {
        await t.query(q.insertSnapshotMembers, [id, input.memberIds.slice(i, i + snapshotBatch)]);
      }
      return {
        id,
        segmentVersionId: input.version.versionId,
        definitionHash: input.version.definitionHash,
        asOf: input.asOf,
        memberCount: input.memberIds.length,
        ...(input.reason ? { reason: input.reason } : {}),
        takenBy: input.actor,
        takenAt: new Date(row!.taken_at).toISOString(),
      };
    };
    return tx ? write(tx) : this.db.transaction(write);
  }

  async getSnapshot(snapshotId: number): Promise<SegmentSnapshot> {
    const [r] = await this.db.query<{
      id: string | number;
      segment_version_id: string | number;
      definition_hash: string;
      as_of: string;
      member_count: number;
      reason: string | null;
      taken_by: string;
      taken_at: Date | string;
    }>(q.snapshotById, [snapshotId]);
    if (!r) throw fail('NOT_FOUND', `segment snapshot ${snapshotId} not found`, { field: 'snapshot' });
    return {
      id: Number(r.id),
      segmentVersionId: Number(r.segment_version_id),
      definitionHash: r.definition_hash,
      asOf: r.as_of,
      memberCount: r.member_count,
      ...(r.reason ? { reason: r.reason } : {}),
      takenBy: r.taken_by,
      takenAt: new Date(r.taken_at).toISOString(),
    };
  }

  /** A page of a snapshot's member ids in ascending order, after `after`. */
  async snapshotMembers(snapshotId: number, options: { after?: number; limit?: number } = {}): Promise<number[]> {
    const rows = await this.db.query<{ patient_id: string | number }>(q.snapshotMembersPage, [
      snapshotId,
      options.after ?? -1,
      Math.min(Math.max(options.limit ?? 1000, 1), 100_000),
    ]);
    return rows.map((r) => Number(r.patient_id));
  }
}

function toVersion(r: VersionRow, name: string): SegmentVersion {
  return {
    versionId: Number(r.id),
    segmentId: Number(r.segment_id),
    name,
    version: r.version,
    definition: typeof r.definition === 'string' ? (JSON.parse(r.definition) as SegmentDefinition) : r.definition,
    definitionHash: r.definition_hash,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
  };
}
