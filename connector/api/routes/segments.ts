// Segment routes: saved segments (versioned by the segment store), counts and explanations over the live index; counts are aggregates, not PHI.
import type { App } from '../../app.js';
import { fail } from '../../errors.js';
import { SegmentRepository, type SegmentSummary } from '../../segments/segment-repository.js';
import { SegmentService } from '../../segments/segment-service.js';
import type { Segment } from '../contract.js';
import { sessionOf, type Handlers } from '../handler.js';

export function segmentHandlers(app: App, clock: () => Date = () => new Date()): Handlers {
  const repository = new SegmentRepository(app.db);
  const service = new SegmentService({
    index: async () => (await app.segmentIndex()).index,
    repository,
    audit: (entries) => app.audit.append(entries),
    clock,
  });

  const summaryById = async (id: string): Promise<SegmentSummary> => {
    const found = (await repository.list()).find((s) => String(s.id) === id);
    if (!found) throw fail('NOT_FOUND', 'no such segment', { field: 'id' });
    return found;
  };
  const toSegment = async (s: SegmentSummary): Promise<Segment> => {
    const version = await repository.get(s.name);
    return {
      id: String(s.id),
      name: s.name,
      description: s.description ?? '',
      definition: version.definition,
      // Stored by the last count or explanation of the current version (null before one, and after an edit).
      lastCount: s.lastCount?.count ?? null,
      updatedAt: new Date(version.createdAt).toISOString(),
    };
  };

  return {
    listSegments: async () => ({ segments: await Promise.all((await repository.list()).map(toSegment)) }),
    getSegment: async ({ params }) => toSegment(await summaryById(params.id)),
    createSegment: async ({ body }, context) => {
      const session = sessionOf(context);
      if ((await repository.list()).some((s) => s.name === body.name)) throw fail('CONFLICT', 'a segment with this name exists; replace it with PUT', { field: 'name' });
      await service.save({ name: body.name, description: body.description, definition: body.definition, actor: session.username });
      const saved = (await repository.list()).find((s) => s.name === body.name)!;
      return toSegment(saved);
    },
    updateSegment: async ({ params, body }, context) => {
      const session = sessionOf(context);
      const current = await summaryById(params.id);
      if (current.name !== body.name) throw fail('CONFLICT', 'a segment keeps its name (approvals name it); create a new segment instead', { field: 'name' });
      await service.save({ name: current.name, description: body.description, definition: body.definition, actor: session.username });
      return toSegment(await summaryById(params.id));
    },
    // Deleting archives: the segment leaves the lists, its versions and snapshots stay for the campaigns that name them.
    deleteSegment: async ({ params }, context) => {
      const session = sessionOf(context);
      const summary = await summaryById(params.id);
      await repository.archive(summary.name, session.username, clock());
      await app.audit.append({ actor: session.username, role: session.role, action: 'segment.archive', purpose: 'operations', entity: `segment/${summary.id}` });
      return null;
    },
    countSegment: async ({ params }) => {
      const version = await repository.get((await summaryById(params.id)).name);
      const result = await service.count(version.definition);
      const countedAt = clock();
      await repository.recordCount(version.versionId, result.count, countedAt);
      return { count: result.count, countedAt: countedAt.toISOString() };
    },
    countDefinition: async ({ body }) => {
      const result = await service.count(body.definition);
      return { count: result.count, countedAt: clock().toISOString() };
    },
    explainSegment: async ({ params }) => {
      const version = await repository.get((await summaryById(params.id)).name);
      const result = await service.explain(version.definition);
      await repository.recordCount(version.versionId, result.steps[0]?.count ?? 0, clock());
      return {
        steps: result.steps.map((s) => ({ clause: `${s.path}: ${s.description}`, matched: s.count })),
        count: result.steps[0]?.count ?? 0,
      };
    },
  };
}
