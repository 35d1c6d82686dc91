// The /api/v1 contract: route table coherence, strict bodies that name the failing field, path building and matching, role access, and the OpenAPI document.
import { describe, expect, it } from 'vitest';
import { allows, lookupEmailInUrl, matchRoute, openApiDocument, routes, routeUrl, type RouteName, type RouteSpec } from '../../../connector/api/contract.js';

const entries = Object.entries(routes) as [RouteName, RouteSpec][];

describe('API contract', () => {
  it('has one route per method and path, each path parameter declared by a params schema', () => {
    const keys = entries.map(([, r]) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const [name, spec] of entries) {
      const names = [...spec.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
      if (names.length) expect(spec.params, name).toBeDefined();
      else expect(spec.params, name).toBeUndefined();
      if (spec.method === 'GET' || spec.method === 'DELETE') expect(spec.body, name).toBeUndefined();
    }
  });

  it('covers the routes the API issue lists', () => {
    const paths = new Set(entries.map(([, r]) => r.path.split('/')[1]));
    for (const p of ['session', 'patients', 'consent', 'segments', 'templates', 'compose', 'campaigns', 'endpoints', 'senders', 'users', 'audit', 'health', 'metrics']) {
      expect(paths, p).toContain(p);
    }
    for (const name of ['createCampaign', 'submitCampaign', 'approveCampaign', 'rejectCampaign', 'scheduleCampaign', 'cancelCampaign', 'getCampaign', 'campaignStats', 'forecast', 'sendOne', 'scanText']) {
      expect(routes).toHaveProperty(name);
    }
  });

  it('rejects unknown fields, wrong types and missing fields, naming the path', () => {
    const body = routes.createCampaign.body;
    const ok = body.safeParse({ name: 'Flu', templateId: 't1', audience: { kind: 'segment', segmentId: 's1' }, purpose: 'marketing' });
    expect(ok.success && ok.data.deliveryMode).toBe('tls-or-escrow');
    const unknown = body.safeParse({ name: 'Flu', templateId: 't1', audience: { kind: 'segment', segmentId: 's1' }, purpose: 'marketing', admin: true });
    expect(unknown.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['admin'] });
    const wrongType = body.safeParse({ name: 'Flu', templateId: 't1', audience: { kind: 'contact', crmId: 42 }, purpose: 'marketing' });
    expect(wrongType.error?.issues[0]!.path).toEqual(['audience', 'crmId']);
    const injection = routes.getCampaign.params.safeParse({ id: "1' OR '1'='1" });
    expect(injection.success).toBe(false);
    expect(routes.rejectCampaign.body.safeParse({}).error?.issues[0]!.path).toEqual(['comment']);
  });

  it('takes exactly one of crmId or email in the body of a POST lookup', () => {
    const b = routes.lookupPatientByBody.body;
    expect(b.safeParse({ crmId: '003Dn00000A1b2cAAB' }).success).toBe(true);
    expect(b.safeParse({ email: 'a@example.org' }).success).toBe(true);
    expect(b.safeParse({}).success).toBe(false);
    expect(b.safeParse({ crmId: '003Dn00000A1b2cAAB', email: 'a@example.org' }).success).toBe(false);
  });

  it('takes only a crmId in the query of a GET lookup, and refuses an e-mail there pointing to POST', () => {
    const q = routes.lookupPatient.query;
    expect(q.safeParse({ crmId: '003Dn00000A1b2cAAB' }).data).toEqual({ crmId: '003Dn00000A1b2cAAB' });
    expect(q.safeParse({}).success).toBe(false);
    for (const query of [{ email: 'a@example.org' }, { crmId: '003Dn00000A1b2cAAB', email: 'a@example.org' }]) {
      const issue = q.safeParse(query).error!.issues[0]!;
      expect(issue.path).toEqual(['email']);
      expect(issue.message).toBe(lookupEmailInUrl);
      expect(issue.message).toMatch(/POST \/api\/v1\/patients\/lookup/);
    }
    // The OpenAPI document lists crmId as the GET operation's one parameter.
    const get = (openApiDocument('t').paths as Record<string, Record<string, { parameters: Array<{ name: string; required: boolean }> }>>)['/api/v1/patients/lookup']!;
    expect(get.get!.parameters.map((p) => [p.name, p.required])).toEqual([['crmId', true]]);
    expect(get.post).toBeDefined();
  });

  it('validates segment definitions with the segment DSL', () => {
    const body = routes.createSegment.body;
    expect(body.safeParse({ name: 'Adults', definition: { all: [{ type: 'age', min: 18 }] } }).success).toBe(true);
    const bad = body.safeParse({ name: 'Adults', definition: { all: [{ type: 'age' }] } });
    expect(bad.success).toBe(false);
  });

  it('builds and matches URLs, encoding parameters', () => {
    expect(routeUrl('approveCampaign', { id: 'c 1/x' })).toBe('/api/v1/campaigns/c%201%2Fx/approve');
    expect(routeUrl('listCampaigns', {}, { status: 'approved', limit: 10, cursor: undefined })).toBe('/api/v1/campaigns?status=approved&limit=10');
    expect(matchRoute('POST', '/campaigns/c1/approve')).toEqual({ name: 'approveCampaign', params: { id: 'c1' } });
    expect(matchRoute('POST', '/segments/count')).toEqual({ name: 'countDefinition', params: {} });
    expect(matchRoute('POST', '/campaigns/forecast')).toEqual({ name: 'forecast', params: {} });
    expect(matchRoute('GET', '/nope')).toBeUndefined();
  });

  it('gives each role its routes: marketers compose, clinicians approve, admins administer', () => {
    expect(allows('createCampaign', 'marketer')).toBe(true);
    expect(allows('createCampaign', 'clinician')).toBe(false);
    expect(allows('approveCampaign', 'clinician')).toBe(true);
    expect(allows('approveCampaign', 'marketer')).toBe(false);
    expect(allows('listUsers', 'marketer')).toBe(false);
    expect(allows('listUsers', 'admin')).toBe(true);
    expect(allows('health', undefined)).toBe(true);
    expect(allows('currentSession', undefined)).toBe(false);
  });

  it('generates an OpenAPI 3.1 document from the same schemas', () => {
    const doc = openApiDocument('1.2.3') as { openapi: string; paths: Record<string, Record<string, { operationId: string; requestBody?: unknown; security?: unknown[]; responses: Record<string, unknown> }>> };
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.values(doc.paths).flatMap((p) => Object.values(p));
    expect(ops).toHaveLength(entries.length);
    expect(doc.paths['/api/v1/campaigns/{id}/reject']!.post!.requestBody).toMatchObject({
      content: { 'application/json': { schema: { type: 'object', required: ['comment'], additionalProperties: false } } },
    });
    expect(doc.paths['/api/v1/session']!.post!.security).toEqual([]);
    expect(Object.keys(doc.paths['/api/v1/session']!.delete!.responses)).toContain('204');
  });
});
