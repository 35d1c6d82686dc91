// Named records kept as numbered versions (templates, segments): the look-ups, the archive and the summary fields their stores share.
import { fail } from '../errors.js';
import type { Queryable } from './db.js';

/** The named queries a versioned record's store provides (each folder keeps its own SQL). */
export interface VersionedQueries {
  /** $1 name: the record, live or archived, with at least `id` and `name`. */
  byName: string;
  /** $1 record id: its latest version. */
  latestVersion: string;
  /** $1 record id, $2 version number. */
  versionByNumber: string;
  /** $1 record id: every version, in order. */
  listVersions: string;
  /** $1 version id. */
  versionById: string;
  /** $1 name, $2 at, $3 actor: archives the live record of that name, RETURNING id. */
  archive: string;
}

/** The look-ups by name, version number and version id, and the archive, over `Row` version rows. */
export interface VersionedRecords<Row> {
  /** The latest version of `name`, or version `version`, with the record's stored name; NOT_FOUND when there is none. */
  version(name: string, version?: number): Promise<{ row: Row; name: string }>;
  /** Every version of `name` with the record's stored name; NOT_FOUND when there is no such record. */
  versions(name: string): Promise<{ rows: Row[]; name: string }>;
  /** A version by its id (what campaigns, approvals and the outbox hold); NOT_FOUND when there is none. */
  versionById(versionId: number): Promise<Row>;
  /** Archives the live record `name` (it leaves every list, its versions stay readable by id); NOT_FOUND when there is none. */
  archive(name: string, actor: string, at: Date): Promise<{ id: number }>;
}

export function versionedRecords<Row>(db: Queryable, kind: 'template' | 'segment', q: VersionedQueries): VersionedRecords<Row> {
  const named = async (name: string): Promise<{ id: string | number; name: string }> => {
    const [record] = await db.query<{ id: string | number; name: string }>(q.byName, [name.trim()]);
    if (!record) throw fail('NOT_FOUND', `${kind} not found`, { field: 'name' });
    return record;
  };
  return {
    async version(name, version) {
      const record = await named(name);
      const [row] =
        version === undefined ? await db.query<Row>(q.latestVersion, [record.id]) : await db.query<Row>(q.versionByNumber, [record.id, version]);
      if (!row) throw fail('NOT_FOUND', `${kind} version ${version ?? 'latest'} not found`, { field: 'version' });
      return { row, name: record.name };
    },
    async versions(name) {
      const record = await named(name);
      return { rows: await db.query<Row>(q.listVersions, [record.id]), name: record.name };
    },
    async versionById(versionId) {
      const [row] = await db.query<Row>(q.versionById, [versionId]);
      if (!row) throw fail('NOT_FOUND', `${kind} version ${versionId} not found`, { field: `${kind}Version` });
      return row;
    },
    async archive(name, actor, at) {
      const [row] = await db.query<{ id: string | number }>(q.archive, [name.trim(), at, actor]);
      if (!row) throw fail('NOT_FOUND', `${kind} not found`, { field: 'name' });
      return { id: Number(row.id) };
    },
  };
}

/** The columns every versioned record's list row has: the record and its latest version. */
export interface SummaryRow {
  id: string | number;
  name: string;
  description: string | null;
  created_by: string;
  created_at: Date | string;
  version_id: string | number;
  version: number;
}

export interface SummaryFields {
  id: number;
  name: string;
  description?: string;
  createdBy: string;
  createdAt: string;
  latestVersion: number;
  latestVersionId: number;
}

/** The list fields every versioned record shares (no `description` when it has none). */
export function summaryFields(r: SummaryRow): SummaryFields {
  return {
    id: Number(r.id),
    name: r.name,
    ...(r.description ? { description: r.description } : {}),
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    latestVersion: r.version,
    latestVersionId: Number(r.version_id),
  };
}
