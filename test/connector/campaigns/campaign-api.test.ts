// The campaign routes over HTTP: create, submit, approve, reject, schedule, stats, forecast and send-one answer in the contract's shapes, with the roles of the permission matrix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { phi } from '../../../fhir/phi.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { startApiWorld, type ApiWorld } from '../api/api-world.js';
import { patient } from './campaign-world.js';

const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;

describe('campaign API', () => {
  let world: ApiWorld;
  let dns: TestDnsServer;
  let ids: number[];
  beforeAll(async () => {
    // A DNS server that knows no domain: every recipient domain is MX_NOT_FOUND, so the forecast holds them at once.
    dns = await startDnsServer({});
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } }, { OUTREACH_DNS_SERVERS: dns.address });
    const { app } = world;
    ids = await app.facts.upsertFacts([
      patient({ patientId: 'api-1', state: 'AP', email: phi('api-1@nowhere.test') }),
      patient({ patientId: 'api-2', state: 'AP', email: phi('api-2@nowhere.test') }),
      patient({ patientId: 'api-3', state: 'AP' }),
    ]);
    for (const id of ids.slice(0, 2)) {
      await app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-api', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
    }
    await app.facts.setCrmId(ids[0]!, '003000000000001AAA');
    await (await app.segmentIndex()).settled();
  }, 180_000);
  afterAll(async () => {
    await world?.close();
    await dns?.close();
  });

  it('runs a campaign through its lifecycle in the contract shapes', async () => {
    const { call, tokens } = world;
    const template = await call('POST', `${apiPrefix}/templates`, { token: tokens.marketer, body: { name: 'API news', purpose: 'marketing', subject: 'News from the clinic', body: '<p>Hello [first name].</p>' } });
    expect(template.status).toBe(201);
    const segment = await call('POST', `${apiPrefix}/segments`, { token: tokens.marketer, body: { name: 'API segment', definition: { type: 'state', value: 'AP' } } });
    expect(segment.status).toBe(201);
    const audience = { kind: 'segment', segmentId: segment.json.id };

    const forecast = await call('POST', `${apiPrefix}/campaigns/forecast`, { token: tokens.marketer, body: { templateId: template.json.id, audience, purpose: 'marketing', deliveryMode: 'tls-or-escrow' } });
    expect(forecast.status).toBe(200);
    expect(forecast.json).toEqual({ recipients: 2, tls: 0, escrow: 0, held: 2, suppressed: 1, modeProblem: null });

    const created = await call('POST', `${apiPrefix}/campaigns`, { token: tokens.marketer, body: { name: 'API campaign', templateId: template.json.id, audience, purpose: 'marketing' } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      status: 'draft', deliveryMode: 'tls-or-escrow', content: { templateId: template.json.id, subject: 'News from the clinic', body: '<p>Hello [first name].</p>' },
      audience: { kind: 'segment', label: 'API segment v1', definition: { type: 'state', value: ['AP'] }, count: 3 }, approvals: [], scheduledAt: null,
    });
    const id = created.json.id as string;
    expect((await call('POST', `${apiPrefix}/campaigns/${id}/approve`, { token: tokens.clinician, body: {} })).json.issue[0].details.coding[0].code).toBe('CAMPAIGN_STATE');
    expect((await call('POST', `${apiPrefix}/campaigns/${id}/submit`, { token: tokens.marketer })).json.status).toBe('pending-approval');
    expect((await call('POST', `${apiPrefix}/campaigns/${id}/approve`, { token: tokens.marketer, body: {} })).status).toBe(403);
    const approved = await call('POST', `${apiPrefix}/campaigns/${id}/approve`, { token: tokens.clinician, body: { comment: 'Reviewed' } });
    expect(approved.json).toMatchObject({ status: 'approved', approvals: [{ by: 'clinician', decision: 'approved', comment: 'Reviewed' }] });
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await call('POST', `${apiPrefix}/campaigns/${id}/schedule`, { token: tokens.marketer, body: { at } });
    expect(scheduled.json).toMatchObject({ status: 'scheduled', scheduledAt: at });
    const list = await call('GET', `${apiPrefix}/campaigns?status=scheduled`, { token: tokens.clinician });
    expect(list.json.campaigns.map((c: { id: string }) => c.id)).toEqual([id]);
    const stats = await call('GET', `${apiPrefix}/campaigns/${id}/stats`, { token: tokens.marketer });
    expect(stats.json).toEqual({ queued: 0, sent: 0, escrowed: 0, held: 0, suppressed: 0, bounced: 0, opened: 0, unsubscribed: 0 });
    expect((await call('POST', `${apiPrefix}/campaigns/${id}/cancel`, { token: tokens.admin })).json.status).toBe('cancelled');
  });

  it('rejects with a comment, refuses a clinical template in tls-or-escrow, and sends a one-off to a CRM contact', async () => {
    const { call, tokens } = world;
    const template = await call('POST', `${apiPrefix}/templates`, { token: tokens.marketer, body: { name: 'API open house', purpose: 'marketing', subject: 'Open house', body: '<p>Our clinic holds an open house on Saturday.</p>' } });
    const created = await call('POST', `${apiPrefix}/campaigns`, { token: tokens.marketer, body: { name: 'One contact', templateId: template.json.id, audience: { kind: 'contact', crmId: '003000000000001AAA' }, purpose: 'marketing' } });
    expect(created.json.audience).toEqual({ kind: 'contact', label: '003000000000001AAA', definition: null, count: 1 });
    await call('POST', `${apiPrefix}/campaigns/${created.json.id}/submit`, { token: tokens.marketer });
    const noComment = await call('POST', `${apiPrefix}/campaigns/${created.json.id}/reject`, { token: tokens.clinician, body: {} });
    expect(noComment.status).toBe(400);
    const rejected = await call('POST', `${apiPrefix}/campaigns/${created.json.id}/reject`, { token: tokens.clinician, body: { comment: 'Add the phone number' } });
    expect(rejected.json).toMatchObject({ status: 'rejected', approvals: [{ decision: 'rejected', comment: 'Add the phone number' }] });

    const clinical = await call('POST', `${apiPrefix}/templates`, { token: tokens.marketer, body: { name: 'API A1C', purpose: 'screening-reminder', subject: 'Your follow-up', body: '<p>Your last A1C was [last a1c].</p>' } });
    const refused = await call('POST', `${apiPrefix}/campaigns`, { token: tokens.marketer, body: { name: 'A1C', templateId: clinical.json.id, audience: { kind: 'contact', crmId: '003000000000001AAA' }, purpose: 'screening-reminder', deliveryMode: 'tls-or-escrow' } });
    expect(refused.status).toBe(422);
    expect(codeOf(refused.json)).toBe('DELIVERY_MODE_NOT_ALLOWED');

    const one = await call('POST', `${apiPrefix}/compose/send-one`, { token: tokens.marketer, body: { crmId: '003000000000001AAA', templateId: template.json.id, purpose: 'marketing', deliveryMode: 'tls-or-escrow' } });
    expect(one.status).toBe(202);
    expect(one.json).toMatchObject({ status: 'queued', reason: null });
    const unknown = await call('POST', `${apiPrefix}/compose/send-one`, { token: tokens.marketer, body: { crmId: '003000000000009AAA', templateId: template.json.id, purpose: 'marketing', deliveryMode: 'tls-or-escrow' } });
    expect(unknown.status).toBe(404);
  });
});
