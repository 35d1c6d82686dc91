// Deleting a segment or a template over HTTP archives it: gone from lists, new work refused (ARCHIVED), while a campaign approved before still sends the approved version; segments show their last count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { syntheticFacts } from '../store/synthetic-facts.js';
import { startApiWorld, type ApiWorld } from './api-world.js';

const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;
const fieldOf = (json: any): string | undefined => json?.issue?.[0]?.expression?.[0];

describe('archiving segments and templates over HTTP', () => {
  let world: ApiWorld;
  const call = (method: string, path: string, init: Parameters<ApiWorld['call']>[2] = {}) => world.call(method, `${apiPrefix}${path}`, init);
  const asMarketer = (body?: unknown) => ({ token: world.tokens.marketer, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } });
    // Six patients, alternating male and female, every one authorized for marketing.
    const ids = await world.app.facts.upsertFacts(Array.from({ length: 6 }, (_, i) => syntheticFacts(i + 1)));
    for (const id of ids) {
      await world.app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'signed-form', sourceRef: 'form-1', textVersion: 'mkt-v1' }, { name: 'test-setup', role: 'admin' });
    }
    await (await world.app.segmentIndex()).settled();
  }, 120_000);
  afterAll(async () => world?.close());

  it('shows a segment’s last count once counted or explained, and none again after its definition changes', async () => {
    const created = await call('POST', '/segments', asMarketer({ name: 'Counted women', definition: { type: 'gender', value: 'female' } }));
    const id = created.json.id as string;
    expect(created.json.lastCount).toBeNull();
    const counted = await call('POST', `/segments/${id}/count`, asMarketer());
    expect(counted.json.count).toBe(3);
    expect((await call('GET', `/segments/${id}`, asMarketer())).json.lastCount).toBe(3);
    await call('PUT', `/segments/${id}`, asMarketer({ name: 'Counted women', definition: { type: 'gender', value: ['female', 'male'] } }));
    expect((await call('GET', `/segments/${id}`, asMarketer())).json.lastCount).toBeNull();
    expect((await call('POST', `/segments/${id}/explain`, { token: world.tokens.clinician })).json.count).toBe(6);
    const listed = (await call('GET', '/segments', asMarketer())).json.segments.find((s: any) => s.id === id);
    expect(listed.lastCount).toBe(6);
  });

  it('archives on DELETE: hidden everywhere new work starts, while an approved campaign sends exactly what was approved', async () => {
    const template = await call('POST', '/templates', asMarketer({ name: 'Spring news', purpose: 'marketing', subject: 'Spring at the clinic', body: '<p>Hello [first name|there], spring hours.</p>' }));
    const segment = await call('POST', '/segments', asMarketer({ name: 'Spring women', definition: { type: 'gender', value: 'female' } }));
    const templateId = template.json.id as string;
    const segmentId = segment.json.id as string;
    const audience = { kind: 'segment', segmentId };
    const campaign = await call('POST', '/campaigns', asMarketer({ name: 'Spring campaign', templateId, audience, purpose: 'marketing' }));
    expect(campaign.status).toBe(201);
    const draft = await call('POST', '/campaigns', asMarketer({ name: 'Spring draft', templateId, audience, purpose: 'marketing' }));
    const id = campaign.json.id as string;
    await call('POST', `/campaigns/${id}/submit`, asMarketer());
    expect((await call('POST', `/campaigns/${id}/approve`, { token: world.tokens.clinician, body: { comment: 'Fine' } })).json.status).toBe('approved');
    const approvedVersion = String((await world.app.db.query<{ template_version_id: unknown }>('SELECT template_version_id FROM campaigns WHERE id = $1', [id]))[0]!.template_version_id);

    // Clinicians cannot archive; marketers can, once.
    expect((await call('DELETE', `/templates/${templateId}`, { token: world.tokens.clinician })).status).toBe(403);
    expect((await call('DELETE', `/templates/${templateId}`, asMarketer())).status).toBe(204);
    expect((await call('DELETE', `/segments/${segmentId}`, asMarketer())).status).toBe(204);
    expect((await call('DELETE', `/templates/${templateId}`, asMarketer())).status).toBe(404);
    expect((await call('DELETE', `/segments/${segmentId}`, asMarketer())).status).toBe(404);

    expect((await call('GET', '/templates', asMarketer())).json.templates.map((t: any) => t.id)).not.toContain(templateId);
    expect((await call('GET', '/segments', asMarketer())).json.segments.map((s: any) => s.id)).not.toContain(segmentId);
    expect((await call('GET', `/templates/${templateId}`, asMarketer())).status).toBe(404);
    expect((await call('GET', `/segments/${segmentId}`, asMarketer())).status).toBe(404);
    const edit = await call('PUT', `/templates/${templateId}`, asMarketer({ name: 'Spring news', purpose: 'marketing', subject: 'Changed', body: '<p>Changed</p>' }));
    expect(edit.status).toBe(404);
    const sameName = await call('POST', '/templates', asMarketer({ name: 'Spring news', purpose: 'marketing', subject: 'Again', body: '<p>Again</p>' }));
    expect(sameName.status).toBe(409);

    // No new campaign, forecast, preview or one-off may name them, and a draft made before is not put up for approval.
    const submitted = await call('POST', `/campaigns/${draft.json.id}/submit`, asMarketer());
    expect([submitted.status, codeOf(submitted.json), fieldOf(submitted.json)]).toEqual([409, 'ARCHIVED', 'templateId']);
    expect((await call('GET', `/campaigns/${draft.json.id}`, asMarketer())).json.status).toBe('draft');
    const other = await call('POST', '/templates', asMarketer({ name: 'Summer news', purpose: 'marketing', subject: 'Summer', body: '<p>Summer hours.</p>' }));
    const newCampaign = await call('POST', '/campaigns', asMarketer({ name: 'Too late', templateId, audience: { kind: 'contact', crmId: '003000000000001AAA' }, purpose: 'marketing' }));
    expect([newCampaign.status, codeOf(newCampaign.json), fieldOf(newCampaign.json)]).toEqual([409, 'ARCHIVED', 'templateId']);
    expect(newCampaign.json.issue[0].diagnostics).toMatch(/template is archived/);
    const onSegment = await call('POST', '/campaigns', asMarketer({ name: 'Too late', templateId: other.json.id, audience, purpose: 'marketing' }));
    expect([onSegment.status, codeOf(onSegment.json), fieldOf(onSegment.json)]).toEqual([409, 'ARCHIVED', 'audience.segmentId']);
    expect(onSegment.json.issue[0].diagnostics).toMatch(/segment is archived/);
    const forecast = await call('POST', '/campaigns/forecast', asMarketer({ templateId: other.json.id, audience, purpose: 'marketing', deliveryMode: 'tls-or-escrow' }));
    expect([forecast.status, codeOf(forecast.json), fieldOf(forecast.json)]).toEqual([409, 'ARCHIVED', 'audience.segmentId']);
    const preview = await call('POST', '/compose/preview', asMarketer({ templateId, audience: { kind: 'contact', crmId: '003000000000001AAA' } }));
    expect(preview.status).toBe(404);
    const oneOff = await call('POST', '/compose/send-one', asMarketer({ crmId: '003000000000001AAA', templateId, purpose: 'marketing', deliveryMode: 'tls-or-escrow' }));
    expect([oneOff.status, codeOf(oneOff.json), fieldOf(oneOff.json)]).toEqual([409, 'ARCHIVED', 'templateId']);

    // The approved campaign still shows and sends the approved content to the approved audience.
    const shown = await call('GET', `/campaigns/${id}`, { token: world.tokens.clinician });
    expect(shown.json).toMatchObject({ status: 'approved', content: { templateId, subject: 'Spring at the clinic' }, audience: { label: 'Spring women v1', count: 3 } });
    expect((await call('POST', `/campaigns/${id}/schedule`, asMarketer({}))).json.status).toBe('scheduled');
    const s = await world.app.sending();
    const [run] = await s.campaigns.runDue();
    expect(run).toMatchObject({ id, report: { members: 3, queued: 3 } });
    const queued = await world.app.db.query<{ template_version: number }>('SELECT template_version FROM delivery_outbox WHERE campaign_id = $1', [`campaign/${id}`]);
    expect(queued.map((r) => String(r.template_version))).toEqual([approvedVersion, approvedVersion, approvedVersion]);

    const actions: string[] = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'template.archive' })) actions.push(`${r.action} ${r.actor} ${r.entity}`);
    for await (const r of world.app.audit.search({ actionPrefix: 'segment.archive' })) actions.push(`${r.action} ${r.actor} ${r.entity}`);
    expect(actions).toEqual([`template.archive marketer template/${templateId}`, `segment.archive marketer segment/${segmentId}`]);
  });
});
