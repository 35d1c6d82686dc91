// Journey routes: create, approve, pause, resume and per-step counts, the journey service in the contract's terms (counts only, never a patient).
import type { App } from '../../app.js';
import type { Journey as ServiceJourney } from '../../journeys/journey-service.js';
import { openJourneys, type Journeys } from '../../journeys/open-journeys.js';
import type { Journey } from '../contract.js';
import { rowId, sessionOf, type Handlers } from '../handler.js';

const toApi = (j: ServiceJourney): Journey => ({
  id: j.id,
  name: j.name,
  status: j.status,
  purpose: j.purpose,
  deliveryMode: j.deliveryMode,
  trigger: j.trigger,
  steps: j.steps,
  revision: j.revision,
  approvedBy: j.approvedBy,
  approvedAt: j.approvedAt?.toISOString() ?? null,
  createdBy: j.createdBy,
  createdAt: j.createdAt.toISOString(),
});

/**
 * The server's journeys do not listen to writes themselves: the scheduler (`outreach journey run --watch`) catches up
 * on every write by its watermark, in whichever process the sync ran.
 */
export function journeyHandlers(app: App): Handlers {
  let opened: Promise<Journeys> | undefined;
  const journeys = () => {
    opened ??= openJourneys(app, { listen: false });
    opened.catch(() => (opened = undefined));
    return opened;
  };
  return {
    listJourneys: async (_request, context) => ({ journeys: (await (await journeys()).service.list(sessionOf(context))).map(toApi) }),
    createJourney: async ({ body }, context) => {
      const { service } = await journeys();
      const steps = await Promise.all(
        body.steps.map(async (step, i) => {
          if (step.kind !== 'send') return step;
          const { templateId, ...rest } = step;
          return { ...rest, templateVersionId: await service.latestTemplateVersion(templateId, `steps.${i}.templateId`) };
        }),
      );
      return toApi(await service.create(sessionOf(context), { ...body, steps }));
    },
    getJourney: async ({ params }, context) => toApi(await (await journeys()).service.get(sessionOf(context), rowId(params.id, 'id'))),
    approveJourney: async ({ params, body }, context) => toApi(await (await journeys()).service.approve(sessionOf(context), rowId(params.id, 'id'), body.revision)),
    pauseJourney: async ({ params }, context) => toApi(await (await journeys()).service.pause(sessionOf(context), rowId(params.id, 'id'))),
    resumeJourney: async ({ params }, context) => toApi(await (await journeys()).service.resume(sessionOf(context), rowId(params.id, 'id'))),
    journeyCounts: async ({ params }, context) => {
      const counts = await (await journeys()).service.counts(sessionOf(context), rowId(params.id, 'id'));
      return { ...counts, journey: toApi(counts.journey) };
    },
  };
}
