// Preview for one real recipient: only a role that may see PHI, always audited (denials too), never without the audit row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog, type AuditRecord } from '../../../connector/audit/audit-log.js';
import { authorize } from '../../../connector/users/authorize.js';
import type { Session } from '../../../connector/users/authorize.js';
import type { Role } from '../../../connector/users/permissions.js';
import { previewSample, previewTemplate, type PreviewDeps } from '../../../connector/compose/preview.js';
import { TemplateStore } from '../../../connector/compose/template-store.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { practiceContext, syntheticFacts } from './facts-fixture.js';
import { rejected } from '../../support/outreach-error.js';

function session(role: Role, username = `${role}1`, idleExpiresAt = new Date(Date.now() + 60_000)): Session {
  const now = new Date();
  return { id: 's1', userId: 'u1', username, role, createdAt: now, lastSeenAt: now, idleExpiresAt, absoluteExpiresAt: new Date(Date.now() + 3_600_000), mustChangePassword: false };
}

describe('template preview', () => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let audit: AuditLog;
  let deps: PreviewDeps;
  /** The audit rows about one patient (each test uses its own patient, so the shared log needs no reset). */
  const rows = async (patient: number) => {
    const out: AuditRecord[] = [];
    for await (const r of audit.search({ patientId: patient, actionPrefix: 'template.' })) out.push(r);
    return out;
  };
  const patients = new Set([4711, 4712, 4713, 4714]);

  beforeAll(async () => {
    // Not a storage test: any real store will do, and PostgreSQL starts in milliseconds where PGlite takes seconds.
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    audit = createAuditLog({ db: store.db, cipher: createTestCipher() });
    const templates = new TemplateStore(store.db);
    await templates.create({
      name: 'a1c',
      content: { subject: 'A note from [practice name]', preheader: '', html: '', text: 'Hi [first name], your last A1C was [last A1C].', fromName: 'pcp' },
      actor: 'marketer1',
    });
    deps = {
      templates,
      loadFacts: async (id) => (patients.has(id) ? syntheticFacts() : undefined),
      authorize,
      audit: (entry) => audit.append(entry),
      context: practiceContext,
    };
  });
  afterAll(async () => store.close());

  it('renders for a clinician and records who saw which patient through which template version', async () => {
    const patientId = 4711;
    const preview = await previewTemplate(deps, { session: session('clinician'), template: { name: 'a1c' }, patientId, purpose: 'treatment' });
    expect(preview.message.text).toBe('Hi Maria, your last A1C was 7.4%.');
    expect(preview.message.fromName).toBe('Dr. Amara Osei');
    expect(preview.analysis.phiClass).toBe('clinical');
    const [row, ...more] = await rows(patientId);
    expect(more).toEqual([]);
    expect(row).toMatchObject({
      actor: 'clinician1',
      role: 'clinician',
      action: 'template.preview',
      purpose: 'treatment',
      outcome: 'success',
      entity: `template-version/${preview.version.versionId}`,
      patientBlind: audit.patientBlind(patientId),
    });
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  it('refuses a marketer, an expired session and no session, and audits each denial', async () => {
    const patientId = 4712;
    expect((await rejected(previewTemplate(deps, { session: session('marketer'), template: { name: 'a1c' }, patientId }))).code).toBe('FORBIDDEN');
    const expired = session('clinician', 'clin2', new Date(Date.now() - 1000));
    expect((await rejected(previewTemplate(deps, { session: expired, template: { name: 'a1c' }, patientId }))).code).toBe('SESSION_EXPIRED');
    expect((await rejected(previewTemplate(deps, { session: undefined, template: { name: 'a1c' }, patientId }))).code).toBe('UNAUTHENTICATED');
    expect((await rows(patientId)).map((r) => [r.actor, r.role, r.outcome, r.patientBlind === audit.patientBlind(patientId)])).toEqual([
      ['marketer1', 'marketer', 'denied', true],
      ['clin2', 'clinician', 'denied', true],
      ['anonymous', 'none', 'denied', true],
    ]);
  });

  it('shows nothing when the audit row cannot be written', async () => {
    const failing: PreviewDeps = { ...deps, audit: async () => Promise.reject(new Error('disk full')) };
    await expect(previewTemplate(failing, { session: session('clinician'), template: { name: 'a1c' }, patientId: 4713 })).rejects.toThrow('disk full');
    expect(await rows(4713)).toEqual([]);
  });

  it('answers NOT_FOUND for an unknown patient or template version, by name or by id', async () => {
    const patientId = 4714;
    expect((await rejected(previewTemplate(deps, { session: session('clinician'), template: { name: 'a1c' }, patientId: 1 }))).code).toBe('NOT_FOUND');
    expect((await rejected(previewTemplate(deps, { session: session('clinician'), template: { versionId: 999 }, patientId }))).code).toBe('NOT_FOUND');
    const v = await deps.templates.get('a1c');
    const byId = await previewTemplate(deps, { session: session('clinician'), template: { versionId: v.versionId }, patientId });
    expect(byId.version).toEqual({ versionId: v.versionId, templateId: v.templateId, name: 'a1c', version: 1, contentHash: v.contentHash });
  });

  it('renders a sample for a marketer from a made-up patient, in the language asked, without an audit row', async () => {
    const before = (await audit.head()).seq;
    const sample = await previewSample(deps, { session: session('marketer'), template: { name: 'a1c' }, language: 'es' });
    expect(sample.message.text).toBe('Hi Alex, your last A1C was 7,2%.');
    expect(sample.message.fromName).toBe('Dr. Jordan Sample');
    expect((await audit.head()).seq).toBe(before);
    expect((await rejected(previewSample(deps, { session: session('admin'), template: { name: 'a1c' } }))).code).toBe('FORBIDDEN');
  });
});
