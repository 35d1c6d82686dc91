// Saved templates: every edit a new version with its content hash, PHI in headers refused, the same on PGlite and PostgreSQL.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TemplateStore, templateContentHash } from '../../../connector/compose/template-store.js';
import type { TemplateContent } from '../../../connector/compose/template.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { rejected } from '../../support/outreach-error.js';

const content: TemplateContent = {
  subject: 'Flu shots at [practice name]',
  preheader: 'Walk in any weekday',
  html: '<p>Hi [first name|there], flu shots are here.</p>',
  text: 'Hi [first name|there], flu shots are here.',
};

describe('content hash', () => {
  it('is stable for the same content and changes with every field', () => {
    const h = templateContentHash(content);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(templateContentHash({ ...content })).toBe(h);
    const edits: TemplateContent[] = [
      { ...content, subject: content.subject + ' ' },
      { ...content, preheader: '' },
      { ...content, html: content.html.replace('Hi', 'Hello') },
      { ...content, text: content.text + '\n' },
      { ...content, fromName: 'pcp' },
      { ...content, fromName: '' },
    ];
    const hashes = new Set([h, ...edits.map(templateContentHash)]);
    expect(hashes.size).toBe(edits.length + 1);
  });
});

describe.each(storeKinds)('template store on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let templates: TemplateStore;
  beforeAll(async () => {
    store = await openTestStore(kind);
    templates = new TemplateStore(store.db);
  });
  afterAll(async () => store.close());
  // The schema is migrated once per file; between tests only this store's tables are emptied (a full reset re-runs
  // every module's migrations and costs about a second per test).
  beforeEach(async () => {
    await store.db.exec('TRUNCATE template_versions, templates RESTART IDENTITY CASCADE');
  });

  it('creates version 1 with its hash and analysis, and refuses a second template of the same name', async () => {
    const v1 = await templates.create({ name: 'flu-2026', content, description: 'Flu season', actor: 'maria' });
    expect(v1).toMatchObject({ name: 'flu-2026', version: 1, contentHash: templateContentHash(content), mergeTags: ['first name', 'practice name'], phiClass: 'identity', deliveryModes: ['tls-required', 'tls-or-escrow', 'escrow'], createdBy: 'maria' });
    expect(await templates.get('flu-2026')).toEqual(v1);
    expect(await templates.getVersion(v1.versionId)).toEqual(v1);
    expect((await rejected(templates.create({ name: 'flu-2026', content, actor: 'maria' }))).code).toBe('CONFLICT');
  });

  it('archives a template: gone from the list, every version still readable by id, no new version, its name not reusable', async () => {
    const v1 = await templates.create({ name: 'flu-2026', content, actor: 'maria' });
    const v2 = await templates.update({ name: 'flu-2026', content: { subject: 'Flu shots are in' }, actor: 'maria' });
    await templates.create({ name: 'checkup', content, actor: 'maria' });
    expect(await templates.archive('flu-2026', 'maria')).toEqual({ id: v1.templateId });
    expect((await templates.list()).map((t) => t.name)).toEqual(['checkup']);
    // An approved campaign holds a version id: it reads the exact approved content.
    expect(await templates.getVersion(v1.versionId)).toEqual(v1);
    expect((await templates.getVersion(v2.versionId)).content.subject).toBe('Flu shots are in');
    expect((await templates.versions('flu-2026')).map((v) => v.version)).toEqual([1, 2]);
    expect((await rejected(templates.update({ name: 'flu-2026', content: { subject: 'Changed after archive' }, actor: 'maria' }))).code).toBe('CONFLICT');
    const reuse = await rejected(templates.create({ name: 'flu-2026', content, actor: 'maria' }));
    expect(reuse.code).toBe('CONFLICT');
    expect(reuse.message).toMatch(/archived/);
    expect((await rejected(templates.archive('flu-2026', 'maria'))).code).toBe('NOT_FOUND');
    expect((await templates.versions('flu-2026')).length).toBe(2);
  });

  it('saves every edit as a new version, keeps the old ones, and returns identical content unchanged', async () => {
    const v1 = await templates.create({ name: 'a1c-reminder', content, actor: 'maria' });
    const v2 = await templates.update({ name: 'a1c-reminder', content: { text: 'Your last A1C: [last A1C|not on file]' }, actor: 'maria' });
    expect(v2).toMatchObject({ version: 2, created: true, phiClass: 'clinical', deliveryModes: ['tls-required', 'escrow'] });
    expect(v2.content).toEqual({ ...content, text: 'Your last A1C: [last A1C|not on file]' });
    expect(v2.contentHash).not.toBe(v1.contentHash);
    const same = await templates.update({ name: 'a1c-reminder', content: { text: 'Your last A1C: [last A1C|not on file]' }, actor: 'jo' });
    expect(same).toMatchObject({ version: 2, created: false, versionId: v2.versionId });
    const v3 = await templates.update({ name: 'a1c-reminder', content: { fromName: 'pcp' }, actor: 'jo' });
    expect(v3).toMatchObject({ version: 3, created: true, content: { fromName: 'pcp' } });
    const v4 = await templates.update({ name: 'a1c-reminder', content: { fromName: null }, actor: 'jo' });
    expect(v4.content.fromName).toBeUndefined();
    expect(v4.contentHash).toBe(v2.contentHash);
    expect(v4.version).toBe(4);
    expect((await templates.versions('a1c-reminder')).map((v) => [v.version, v.createdBy])).toEqual([[1, 'maria'], [2, 'maria'], [3, 'jo'], [4, 'jo']]);
    expect((await templates.get('a1c-reminder', 1)).content).toEqual(content);
    expect(await templates.list()).toMatchObject([{ name: 'a1c-reminder', latestVersion: 4, latestVersionId: v4.versionId, phiClass: 'clinical', mergeTags: ['first name', 'last a1c', 'practice name'] }]);
  });

  it('numbers concurrent edits without gaps or duplicates', async () => {
    await templates.create({ name: 'busy', content, actor: 'maria' });
    const edits = await Promise.all(
      Array.from({ length: 6 }, (_, i) => templates.update({ name: 'busy', content: { text: `Edit ${i} for [first name|you]` }, actor: 'maria' })),
    );
    expect(edits.map((e) => e.version).sort()).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('refuses unknown tags and PHI in the subject, saving nothing', async () => {
    const unknown = await rejected(templates.create({ name: 'bad', content: { ...content, html: '<p>\n [frist name]</p>' }, actor: 'maria' }));
    expect(unknown.code).toBe('TEMPLATE_INVALID');
    expect(unknown.message).toContain('html at 2:2');
    const phi = await rejected(templates.create({ name: 'bad', content: { ...content, subject: 'Your pregnancy checklist' }, actor: 'maria' }));
    expect(phi.code).toBe('TEMPLATE_PHI_BLOCKED');
    expect(await templates.list()).toEqual([]);
    await templates.create({ name: 'ok', content, actor: 'maria' });
    const tag = await rejected(templates.update({ name: 'ok', content: { subject: 'Hi [first name]' }, actor: 'maria' }));
    expect(tag.code).toBe('TEMPLATE_PHI_BLOCKED');
    expect((await templates.versions('ok')).length).toBe(1);
  });

  it('stores the template exactly as written', async () => {
    const written = { ...content, html: '<p>Ünïcode — “quotes” &amp; \r\n CRLF</p>', text: 'Line 1\r\nLine 2 [first name|]' };
    const v = await templates.create({ name: 'exact', content: written, actor: 'maria' });
    expect((await templates.get('exact')).content).toEqual(written);
    expect(v.contentHash).toBe(templateContentHash(written));
  });

  it('answers NOT_FOUND for unknown names and versions, and BAD_REQUEST for bad names', async () => {
    expect((await rejected(templates.get('nope'))).code).toBe('NOT_FOUND');
    expect((await rejected(templates.update({ name: 'nope', content: { text: 'x' }, actor: 'maria' }))).code).toBe('NOT_FOUND');
    await templates.create({ name: 'one', content, actor: 'maria' });
    expect((await rejected(templates.get('one', 9))).code).toBe('NOT_FOUND');
    expect((await rejected(templates.getVersion(999999))).code).toBe('NOT_FOUND');
    expect((await rejected(templates.create({ name: '  ', content, actor: 'maria' }))).code).toBe('BAD_REQUEST');
    expect((await rejected(templates.create({ name: 'x', content, actor: 'has space' }))).code).toBe('BAD_REQUEST');
  });
});
