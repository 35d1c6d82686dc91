// Campaign routes, the delivery forecast and the one-off send: the campaign service of the send pipeline in the contract's terms.
import type { App } from '../../app.js';
import type { Campaign as ServiceCampaign, CampaignStatus } from '../../campaigns/campaign-service.js';
import { SegmentRepository } from '../../segments/segment-repository.js';
import type { SendingService } from '../../sending/sending-service.js';
import type { Session } from '../../users/authorize.js';
import type { Audience, Campaign } from '../contract.js';
import { rowId, sessionOf, type Handlers } from '../handler.js';

const audienceRef = (a: Audience) =>
  a.kind === 'segment' ? { kind: 'segment' as const, segmentId: Number(rowId(a.segmentId, 'segmentId')) } : { kind: 'contact' as const, crmId: a.crmId };

const templateRef = (id: string) => ({ templateId: Number(rowId(id, 'templateId')) });

export function campaignHandlers(app: App): Handlers {
  const segmentVersions = new SegmentRepository(app.db);
  const sending = () => app.sending();

  /** A campaign as the contract shows it: the template text the clinician approves, the audience rule and size, the decisions. */
  const toApi = async (s: SendingService, c: ServiceCampaign): Promise<Campaign> => {
    const version = await s.templates.getVersion(c.templateVersionId);
    let audience: Campaign['audience'];
    if (c.audience.kind === 'segment') {
      const sv = await segmentVersions.getVersion(c.audience.segmentVersionId);
      const count = c.audienceCount ?? (await s.segments.count(sv.definition)).count;
      audience = { kind: 'segment', label: `${sv.name} v${sv.version}`, definition: sv.definition, count };
    } else {
      audience = { kind: 'contact', label: c.audience.crmId ?? `patient ${c.audience.patientId}`, definition: null, count: 1 };
    }
    const decisions = await s.campaigns.readDecisions(c.id);
    return {
      id: c.id,
      name: c.name,
      status: c.status,
      purpose: c.purpose,
      deliveryMode: c.deliveryMode,
      content: { templateId: String(version.templateId), subject: version.content.subject, preheader: version.content.preheader, body: version.content.html || version.content.text },
      audience,
      createdBy: c.createdBy,
      createdAt: c.createdAt.toISOString(),
      approvals: decisions
        .filter((d) => d.decision === 'approved' || d.decision === 'rejected')
        .map((d) => ({ by: d.by, decision: d.decision as 'approved' | 'rejected', comment: d.comment, at: d.at.toISOString() })),
      scheduledAt: c.scheduledAt?.toISOString() ?? null,
    };
  };

  const one = async (context: Parameters<typeof sessionOf>[0], act: (s: SendingService, session: Session) => Promise<ServiceCampaign>): Promise<Campaign> => {
    const session = sessionOf(context);
    const s = await sending();
    return toApi(s, await act(s, session));
  };

  return {
    listCampaigns: async ({ query }, context) => {
      const session = sessionOf(context);
      const s = await sending();
      const after = query.cursor && /^[0-9]{1,18}$/.test(query.cursor) ? Number(query.cursor) : 0;
      const list = await s.campaigns.list(session, { ...(query.status ? { status: query.status as CampaignStatus } : {}), after, limit: query.limit + 1 });
      const more = list.length > query.limit;
      const page = list.slice(0, query.limit);
      return { campaigns: await Promise.all(page.map((c) => toApi(s, c))), nextCursor: more ? page[page.length - 1]!.id : null };
    },
    // The campaign service refuses archived templates and segments (ARCHIVED) on every path: create, edit, submit, forecast, one-off.
    createCampaign: ({ body }, context) =>
      one(context, (s, session) =>
        s.campaigns.create(session, { name: body.name, template: templateRef(body.templateId), audience: audienceRef(body.audience), purpose: body.purpose, deliveryMode: body.deliveryMode }),
      ),
    getCampaign: ({ params }, context) => one(context, (s, session) => s.campaigns.get(session, params.id)),
    submitCampaign: ({ params }, context) => one(context, (s, session) => s.campaigns.submit(session, params.id)),
    approveCampaign: ({ params, body }, context) => one(context, (s, session) => s.campaigns.approve(session, params.id, body.comment)),
    rejectCampaign: ({ params, body }, context) => one(context, (s, session) => s.campaigns.reject(session, params.id, body.comment)),
    scheduleCampaign: ({ params, body }, context) => one(context, (s, session) => s.campaigns.schedule(session, params.id, body.at ? new Date(body.at) : undefined)),
    cancelCampaign: ({ params }, context) => one(context, (s, session) => s.campaigns.cancel(session, params.id)),
    campaignStats: async ({ params }, context) => {
      const s = await sending();
      const stats = await s.campaigns.stats(sessionOf(context), params.id);
      const excluded = Object.values(stats.excluded).reduce((a, b) => a + b, 0);
      return {
        queued: (stats.states.queued ?? 0) + (stats.states.sending ?? 0),
        sent: stats.states.delivered ?? 0,
        escrowed: stats.states.notice_sent ?? 0,
        held: stats.states.held ?? 0,
        suppressed: excluded + (stats.states.cancelled ?? 0),
        bounced: stats.bounced,
        opened: stats.opened,
        unsubscribed: stats.unsubscribed,
      };
    },
    forecast: async ({ body }, context) => {
      const s = await sending();
      const f = await s.campaigns.forecast(sessionOf(context), {
        template: templateRef(body.templateId), audience: audienceRef(body.audience), purpose: body.purpose, deliveryMode: body.deliveryMode,
      });
      // The contract has no bucket for PHI-free mail sent without verified TLS: it is in `recipients` and in none of tls, escrow or held.
      return { recipients: f.recipients, tls: f.tls, escrow: f.escrow, held: f.held, suppressed: f.suppressed, modeProblem: f.modeProblem };
    },
    sendOne: async ({ body }, context) => {
      const s = await sending();
      return s.sendOne(sessionOf(context), {
        template: templateRef(body.templateId), audience: { kind: 'contact', crmId: body.crmId }, purpose: body.purpose, deliveryMode: body.deliveryMode,
      });
    },
  };
}
