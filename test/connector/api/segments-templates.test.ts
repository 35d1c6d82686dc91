// Segments and templates over HTTP: save, version, count and explain over the live index; templates with their PHI analysis and a masked preview.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { textFromHtml } from '../../../connector/api/routes/templates.js';
import { syntheticFacts } from '../store/synthetic-facts.js';
import { startApiWorld, type ApiWorld } from './api-world.js';

const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;
const fieldOf = (json: any): string | undefined => json?.issue?.[0]?.expression?.[0];

describe('segments and templates over HTTP', () => {
  let world: ApiWorld;
  const call = (method: string, path: string, init: Parameters<ApiWorld['call']>[2] = {}) => world.call(method, `${apiPrefix}${path}`, init);
  const asMarketer = (body?: unknown) => ({ token: world.tokens.marketer, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } });
    // Ten patients, alternating male and female.
    const ids = await world.app.facts.upsertFacts(Array.from({ length: 10 }, (_, i) => syntheticFacts(i + 1)));
    await world.app.facts.setCrmId(ids[0]!, '003000000000001AAA');
  });
  afterAll(async () => world?.close());

  it('creates, reads, versions, counts and explains a segment', async () => {
    const definition = { all: [{ type: 'gender', value: 'female' }, { type: 'age', min: 18 }] };
    const created = await call('POST', '/segments', asMarketer({ name: 'Adult women', definition }));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'Adult women', description: '', lastCount: null });
    // Stored in the normal form of the segment schema (single values become lists).
    const normal = { all: [{ type: 'gender', value: ['female'] }, { type: 'age', min: 18 }] };
    expect(created.json.definition).toEqual(normal);
    const id = created.json.id as string;

    expect((await call('POST', '/segments', asMarketer({ name: 'Adult women', definition }))).status).toBe(409);
    expect((await call('GET', `/segments/${id}`, { token: world.tokens.clinician })).json.definition).toEqual(normal);
    expect((await call('GET', '/segments', asMarketer())).json.segments.map((s: any) => s.name)).toEqual(['Adult women']);

    const count = await call('POST', `/segments/${id}/count`, asMarketer());
    expect(count.status).toBe(200);
    expect(count.json.count).toBe(5);
    const unsaved = await call('POST', '/segments/count', asMarketer({ definition: { type: 'gender', value: 'male' } }));
    expect(unsaved.json.count).toBe(5);
    const explained = await call('POST', `/segments/${id}/explain`, { token: world.tokens.clinician });
    expect(explained.json.count).toBe(5);
    expect(explained.json.steps.length).toBe(3);
    expect(explained.json.steps[0].matched).toBe(5);

    const updated = await call('PUT', `/segments/${id}`, asMarketer({ name: 'Adult women', definition: { type: 'gender', value: ['female', 'male'] } }));
    expect(updated.status).toBe(200);
    expect((await call('POST', `/segments/${id}/count`, asMarketer())).json.count).toBe(10);
    const renamed = await call('PUT', `/segments/${id}`, asMarketer({ name: 'Someone else', definition }));
    expect(renamed.status).toBe(409);
    expect(fieldOf(renamed.json)).toBe('name');
    // Deleting archives (archive.test.ts); a clinician may not.
    expect((await call('DELETE', `/segments/${id}`, { token: world.tokens.clinician })).status).toBe(403);
    expect((await call('GET', '/segments/424242', asMarketer())).status).toBe(404);
  });

  it('names the path of a bad segment definition', async () => {
    const bad = await call('POST', '/segments/count', asMarketer({ definition: { all: [{ type: 'age', min: 'forty' }] } }));
    expect(bad.status).toBe(400);
    expect(fieldOf(bad.json)).toMatch(/^definition\.all\[0\]/);
    // Built as text: deeper than a JSON.stringify in the test could walk.
    const deep = `{"definition":${'{"all":['.repeat(5000)}{"type":"notSuppressed"}${']}'.repeat(5000)}}`;
    const tooDeep = await call('POST', '/segments/count', { token: world.tokens.marketer, raw: deep, headers: { 'content-type': 'application/json' } });
    expect(tooDeep.status).toBeGreaterThanOrEqual(400);
    expect(tooDeep.status).toBeLessThan(500);
    expect((await call('GET', '/health')).json.status).toBe('ok');
  });

  it('saves a template with its merge tags and purpose, and refuses PHI in the subject naming the field', async () => {
    const created = await call('POST', '/templates', asMarketer({
      name: 'Flu shot reminder',
      purpose: 'appointment-reminder',
      subject: 'Your flu shot is waiting',
      body: '<p>Hello [first name|there],</p><p>Book your flu shot today.</p>',
    }));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'Flu shot reminder', purpose: 'appointment-reminder', preheader: '', mergeTags: ['first name'], usesClinicalTags: false });
    const id = created.json.id as string;
    expect((await call('GET', `/templates/${id}`, { token: world.tokens.clinician })).json.body).toContain('[first name|there]');
    expect((await call('GET', '/templates', { token: world.tokens.admin })).status).toBe(403);

    const phiSubject = await call('POST', '/templates', asMarketer({ name: 'Bad subject', purpose: 'marketing', subject: 'Hello [first name], about your visit', body: '<p>Hi</p>' }));
    expect(phiSubject.status).toBe(422);
    expect(codeOf(phiSubject.json)).toBe('TEMPLATE_PHI_BLOCKED');
    expect(fieldOf(phiSubject.json)).toBe('subject');

    const updated = await call('PUT', `/templates/${id}`, asMarketer({ name: 'Flu shot reminder', purpose: 'appointment-reminder', subject: 'Flu shots are here', body: '<p>Hi [first name|there]</p>' }));
    expect(updated.status).toBe(200);
    expect(updated.json.subject).toBe('Flu shots are here');
    expect((await call('DELETE', `/templates/${id}`, { token: world.tokens.clinician })).status).toBe(403);
    const listed = await call('GET', '/templates', asMarketer());
    expect(listed.json.templates.map((t: any) => [t.name, t.purpose, t.subject])).toEqual([['Flu shot reminder', 'appointment-reminder', 'Flu shots are here']]);
  });

  it('previews a template for an audience with sample values, never a recipient’s data', async () => {
    const template = (await call('GET', '/templates', asMarketer())).json.templates[0];
    const segment = (await call('GET', '/segments', asMarketer())).json.segments[0];
    const bySegment = await call('POST', '/compose/preview', asMarketer({ templateId: template.id, audience: { kind: 'segment', segmentId: segment.id } }));
    expect(bySegment.status).toBe(200);
    expect(bySegment.json.subject).toBe('Flu shots are here');
    expect(bySegment.json.body).toContain('Alex');
    for (const real of ['Ada', 'Bram', 'Cleo', 'Okafor', 'Lindqvist']) expect(bySegment.json.body).not.toContain(real);
    expect(bySegment.json.scan).toMatchObject({ blocked: false });
    const byContact = await call('POST', '/compose/preview', { token: world.tokens.clinician, body: { templateId: template.id, audience: { kind: 'contact', crmId: '003000000000001AAA' } } });
    expect(byContact.status).toBe(200);
    const unknownContact = await call('POST', '/compose/preview', asMarketer({ templateId: template.id, audience: { kind: 'contact', crmId: '003000000000777AAA' } }));
    expect(unknownContact.status).toBe(404);
    expect(fieldOf(unknownContact.json)).toBe('audience.crmId');
  });

  it('scans text for PHI and returns offsets, never the matched text', async () => {
    const text = 'Call Ada Okafor, DOB 04/12/1961, about her diabetes mellitus type 2.';
    const r = await call('POST', '/compose/scan', asMarketer({ text, field: 'subject' }));
    expect(r.status).toBe(200);
    expect(r.json.blocked).toBe(true);
    expect(r.json.findings.map((f: any) => f.kind)).toEqual(expect.arrayContaining(['dob', 'condition']));
    expect(r.text).not.toContain('1961');
    expect(r.text).not.toMatch(/diabetes/i);
    const body = await call('POST', '/compose/scan', asMarketer({ text }));
    expect(body.json.blocked).toBe(false);
  });

  it('derives the plain-text part from the HTML body', () => {
    expect(textFromHtml('<html><head><style>p{}</style></head><body><p>Hi [first name]&amp; welcome</p><p>Line&nbsp;two<br>three</p></body></html>')).toBe(
      'Hi [first name]& welcome\nLine two\nthree',
    );
  });
});
