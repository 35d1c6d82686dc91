// Template routes and the masked preview: content versioned by the template store, with the purpose the API names and the PHI analysis at save.
import type { App } from '../../app.js';
import { reveal } from '../../../fhir/phi.js';
import { fail, OutreachError } from '../../errors.js';
import { scanText } from '../../compose/phi-scanner.js';
import { compileTemplate } from '../../compose/render.js';
import { sampleFacts } from '../../compose/sample-facts.js';
import { TemplateStore, type TemplateSummary, type TemplateVersion } from '../../compose/template-store.js';
import type { TemplateContent } from '../../compose/template.js';
import { SegmentRepository } from '../../segments/segment-repository.js';
import { loadQueries } from '../../store/db.js';
import type { Purpose } from '../../consent/purposes.js';
import type { Template } from '../contract.js';
import { sessionOf, type Handlers } from '../handler.js';

const q = loadQueries(new URL('../queries.sql', import.meta.url), ['templatePurposes', 'setTemplatePurpose'] as const);

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", nbsp: ' ' };

/** The plain-text part from the HTML body: block ends become line breaks, tags go, merge tags stay. */
export function textFromHtml(html: string): string {
  return html
    .replace(/<(script|style|head)[^>]*>[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr|table)>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (_, e: string) => entities[e]!)
    .replace(/[ \t]+/g, ' ')
    .replace(/\n\s*\n+/g, '\n\n')
    .trim();
}

/** The store names the HTML part `html` (and its text part `text`); the API calls the body `body`. */
function inApiTerms(err: unknown): unknown {
  if (err instanceof OutreachError && (err.details.field === 'html' || err.details.field === 'text')) {
    return new OutreachError(err.code, err.message.replace(/^(html|text)\b/, 'body'), { ...err.details, field: 'body' });
  }
  return err;
}

export function templateHandlers(app: App): Handlers {
  const store = new TemplateStore(app.db);
  const segments = new SegmentRepository(app.db);

  const purposes = async (): Promise<Map<string, Purpose>> =>
    new Map((await app.db.query<{ template_id: string; purpose: Purpose }>(q.templatePurposes)).map((r) => [String(r.template_id), r.purpose]));
  const summaryById = async (id: string): Promise<TemplateSummary> => {
    const found = (await store.list()).find((t) => String(t.id) === id);
    if (!found) throw fail('NOT_FOUND', 'no such template', { field: 'id' });
    return found;
  };
  const toTemplate = (v: TemplateVersion, purpose: Purpose | undefined): Template => ({
    id: String(v.templateId),
    name: v.name,
    // Templates saved outside the API (the CLI) carry no purpose: they are treated as marketing, the strictest.
    purpose: purpose ?? 'marketing',
    subject: v.content.subject,
    preheader: v.content.preheader,
    body: v.content.html,
    mergeTags: v.mergeTags,
    usesClinicalTags: !v.deliveryModes.includes('tls-or-escrow'),
    updatedAt: new Date(v.createdAt).toISOString(),
  });
  const contentOf = (body: { subject: string; preheader: string; body: string }): TemplateContent => ({
    subject: body.subject,
    preheader: body.preheader,
    html: body.body,
    text: textFromHtml(body.body),
  });

  return {
    listTemplates: async () => {
      const byId = await purposes();
      const list = await store.list();
      return { templates: await Promise.all(list.map(async (t) => toTemplate(await store.get(t.name), byId.get(String(t.id))))) };
    },
    getTemplate: async ({ params }) => {
      const summary = await summaryById(params.id);
      return toTemplate(await store.get(summary.name), (await purposes()).get(String(summary.id)));
    },
    createTemplate: async ({ body }, context) => {
      const session = sessionOf(context);
      const saved = await store.create({ name: body.name, content: contentOf(body), actor: session.username }).catch((err: unknown) => {
        throw inApiTerms(err);
      });
      await app.db.query(q.setTemplatePurpose, [saved.templateId, body.purpose]);
      await app.audit.append({ actor: session.username, role: session.role, action: 'template.create', purpose: 'operations', entity: `template-version/${saved.versionId}` });
      return toTemplate(saved, body.purpose);
    },
    updateTemplate: async ({ params, body }, context) => {
      const session = sessionOf(context);
      const summary = await summaryById(params.id);
      if (summary.name !== body.name) throw fail('CONFLICT', 'a template keeps its name (approvals name it); create a new template instead', { field: 'name' });
      const saved = await store
        .update({ name: summary.name, content: { ...contentOf(body), fromName: null }, actor: session.username })
        .catch((err: unknown) => {
          throw inApiTerms(err);
        });
      await app.db.query(q.setTemplatePurpose, [saved.templateId, body.purpose]);
      if (saved.created) {
        await app.audit.append({ actor: session.username, role: session.role, action: 'template.update', purpose: 'operations', entity: `template-version/${saved.versionId}` });
      }
      return toTemplate(saved, body.purpose);
    },
    // Deleting archives: the template leaves the lists and takes no new version; campaigns keep the versions they were approved with.
    deleteTemplate: async ({ params }, context) => {
      const session = sessionOf(context);
      const summary = await summaryById(params.id);
      await store.archive(summary.name, session.username);
      await app.audit.append({ actor: session.username, role: session.role, action: 'template.archive', purpose: 'operations', entity: `template/${summary.id}` });
      return null;
    },

    preview: async ({ body }) => {
      const summary = await summaryById(body.templateId).catch(() => {
        throw fail('NOT_FOUND', 'no such template', { field: 'templateId' });
      });
      if (body.audience.kind === 'segment') {
        const segmentId = body.audience.segmentId;
        if (!(await segments.list()).some((s) => String(s.id) === segmentId)) throw fail('NOT_FOUND', 'no such segment', { field: 'audience.segmentId' });
      } else if ((await app.facts.findByCrmId(body.audience.crmId)).length === 0) {
        throw fail('NOT_FOUND', 'no patient is linked to this CRM record', { field: 'audience.crmId' });
      }
      const version = await store.get(summary.name);
      // Every merge value comes from a made-up sample patient: the marketer sees the layout, never a recipient's data.
      const [sender] = (await app.senders.list()).filter((s) => s.verified);
      const message = compileTemplate(version.content).render(sampleFacts(), {
        practice: { name: 'Your practice' },
        sender: sender
          ? { address: sender.address, verifiedDomain: sender.address.slice(sender.address.lastIndexOf('@') + 1), displayName: sender.displayName || 'Your practice' }
          : { address: 'outreach@example.invalid', verifiedDomain: 'example.invalid', displayName: 'Your practice' },
      });
      const html = reveal(message.html);
      const findings = scanText(html).map((f) => ({ start: f.start, end: f.end, kind: f.kind, category: f.category, severity: f.severity, rule: f.rule }));
      // As in the PHI scan route: a finding in the subject or preheader would block the message; in the body it narrows the modes.
      const blocked = scanText(message.subject).length + scanText(message.preheader).length > 0;
      return { subject: message.subject, preheader: message.preheader, body: html, scan: { findings, blocked } };
    },
  };
}
