// New work names only live content: a campaign or journey that uses an archived template or segment is refused with ARCHIVED, whichever path (API, CLI, journeys) creates or submits it.
import { fail } from '../errors.js';
import { loadQueries, type Queryable } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['templateOfVersion', 'segmentOfVersion'] as const);

/**
 * ARCHIVED when the template of this version was archived. Its versions stay readable (campaigns approved before the
 * archive still send them), but nothing new may start from it. `field` is the caller's name for the template.
 */
export async function requireLiveTemplate(db: Queryable, templateVersionId: number, field: string): Promise<void> {
  const [row] = await db.query<{ archived_at: Date | null }>(q.templateOfVersion, [templateVersionId]);
  if (!row) throw fail('NOT_FOUND', 'template version not found', { field });
  if (row.archived_at) throw fail('ARCHIVED', 'the template is archived: new campaigns and journeys cannot use it; choose a live template', { field });
}

/** ARCHIVED when the segment of this version was archived (its versions and snapshots stay for the campaigns that hold them). */
export async function requireLiveSegment(db: Queryable, segmentVersionId: number, field: string): Promise<void> {
  const [row] = await db.query<{ archived_at: Date | null }>(q.segmentOfVersion, [segmentVersionId]);
  if (!row) throw fail('NOT_FOUND', 'segment version not found', { field });
  if (row.archived_at) throw fail('ARCHIVED', 'the segment is archived: new campaigns and journeys cannot use it; choose a live segment', { field });
}
