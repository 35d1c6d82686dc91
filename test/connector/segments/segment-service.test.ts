// Segments over the real store: Synthea patients sealed and read back, hand-checked counts, live updates, saved versions, snapshots, exports, CLI.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { factsFromBundles } from '../../../fhir/derive-facts.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { OutreachError } from '../../../connector/errors.js';
import { registerSegmentCommands } from '../../../connector/segments/cli.js';
import { setRowsAfter } from '../../../connector/segments/bitset.js';
import { dayNumber } from '../../../connector/segments/day-number.js';
import { definitionHash } from '../../../connector/segments/definition-hash.js';
import { parseSegmentDefinition } from '../../../connector/segments/definition.js';
import { openLiveSegmentIndex, type LiveSegmentIndex } from '../../../connector/segments/live-index.js';
import { evaluateSegment } from '../../../connector/segments/segment-evaluator.js';
import { segmentToCrmIds, segmentToFhirGroup } from '../../../connector/segments/segment-export.js';
import { SegmentRepository } from '../../../connector/segments/segment-repository.js';
import { SegmentService } from '../../../connector/segments/segment-service.js';
import { FactsRepository } from '../../../connector/store/facts-repository.js';
import { ContactLinks } from '../../../connector/salesforce/contact-links.js';
import { cliRunner } from '../../support/cli-runner.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { matches } from './support/brute-force.js';

const syntheaDir = '/work/shared/fixtures/synthea';
const asOf = '2020-06-01';
const now = new Date(`${asOf}T12:00:00Z`);
const bundles = readdirSync(syntheaDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(syntheaDir, f), 'utf8')) as Bundle)
  .filter((b) => b.resourceType === 'Bundle');
const synthea = [...factsFromBundles(bundles, { source: 'demo', now }).facts.values()];
const operator = { name: 'cli:test', role: 'admin' };

/** What each definition selects among the 13 Synthea patients on 2020-06-01, read by hand from the bundles. */
const handChecked: Array<[string, unknown, string[]]> = [
  ['female', { type: 'gender', value: 'female' }, ['Macejkovic', 'Schmidt', 'Waelchi']],
  ['aged 40-75', { type: 'age', min: 40, max: 75 }, ['Schmidt', 'Russel', 'Runte']],
  ['prediabetes, active, by value set', { type: 'condition', valueSet: 'prediabetes', status: 'active' }, ['Green', 'Krajcik']],
  ['prediabetes by SNOMED code', { type: 'condition', system: 'http://snomed.info/sct', code: '15777000' }, ['Green', 'Krajcik']],
  ['diabetes (none in the fixtures)', { type: 'condition', valueSet: 'diabetes' }, []],
  ['chronic sinusitis, active', { type: 'condition', code: '40055000', status: 'active' }, ['Hoppe', 'Russel']],
  ['HbA1c > 6.2', { type: 'hba1c', op: '>', value: 6.2 }, ['Krajcik']],
  ['HbA1c > 6 within 365 days (both measured 2019-05-26)', { type: 'hba1c', op: '>', value: 6, withinDays: 365 }, []],
  ['HbA1c > 6 within 400 days', { type: 'hba1c', op: '>', value: 6, withinDays: 400 }, ['Green', 'Krajcik']],
  ['glucose > 70', { type: 'observation', loinc: '2339-0', op: '>', value: 70 }, ['Krajcik']],
  ['visited within a year', { type: 'lastVisit', withinDays: 365 }, ['Macejkovic', 'Schmidt', 'Waelchi', 'Hoppe', 'Russel', 'Runte']],
  ['no visit within a year', { not: { type: 'lastVisit', withinDays: 365 } }, ['Streich', 'McGlynn', 'Beer', 'Green', 'Krajcik', 'Schmeler', 'Bergstrom']],
  ['last visit before 2018-01-01', { type: 'lastVisit', before: '2018-01-01' }, ['McGlynn']],
  ['last visit for anemia (271737000)', { type: 'lastVisitReason', code: '271737000' }, ['Krajcik']],
  ['active coverage', { type: 'coverage', active: true }, ['Macejkovic', 'Schmidt', 'Waelchi', 'Hoppe', 'Russel', 'Runte']],
  ['payer Humana', { type: 'coverage', payer: 'humana' }, ['Macejkovic', 'Schmidt']],
  ['colonoscopy', { type: 'procedure', code: '73761001' }, ['Schmidt', 'Runte']],
  ['medication RxNorm 849574', { type: 'medication', code: '849574' }, ['Schmidt', 'Beer', 'Russel', 'Bergstrom']],
  ['city Brockton', { type: 'city', value: 'brockton' }, ['Waelchi', 'Runte']],
  ['postal code 021..', { type: 'postalCode', prefix: '021' }, ['Streich', 'Schmidt', 'Krajcik']],
  ['state MA', { type: 'state', value: 'MA' }, synthea.map((f) => f.family!)],
  ['PCP by NPI', { type: 'pcp', value: '9999974179' }, ['Schmidt']],
  ['appointment within 30 days', { type: 'appointment', withinDays: 30 }, []],
  [
    'active prediabetes without active coverage',
    { all: [{ type: 'condition', valueSet: 'prediabetes', status: 'active' }, { not: { type: 'coverage', active: true } }] },
    ['Green', 'Krajcik'],
  ],
];

describe.each(storeKinds)('segments on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let facts: FactsRepository;
  let consent: ConsentRegistry;
  let audit: AuditLog;
  let live: LiveSegmentIndex;
  let service: SegmentService;
  let dir: string;
  const cipher = createTestCipher();
  const idOf = new Map<string, number>();
  const factsOf = new Map<string, PatientFacts>();
  const names = (ids: readonly number[]) => ids.map((id) => [...idOf].find(([, i]) => i === id)![0]).sort();

  beforeAll(async () => {
    store = await openTestStore(kind);
    dir = mkdtempSync(join(tmpdir(), 'outreach-segments-'));
    audit = createAuditLog({ db: store.db, cipher });
    consent = new ConsentRegistry({ db: store.db, cipher, audit, clock: () => now });
    facts = new FactsRepository(store.db, cipher);
    const ids = await facts.upsertFacts(synthea);
    synthea.forEach((f, i) => {
      idOf.set(f.family!, ids[i]!);
      factsOf.set(f.family!, f);
    });
    live = await openLiveSegmentIndex({ facts, consent });
    service = new SegmentService({
      index: async () => live.index,
      repository: new SegmentRepository(store.db),
      audit: (entries) => audit.append(entries),
      clock: () => now,
    });
  });
  afterAll(async () => {
    live?.close();
    rmSync(dir, { recursive: true, force: true });
    await store?.close();
  });

  it.each(handChecked)('selects the hand-checked Synthea patients: %s', async (_, definition, expected) => {
    const page = await service.members(definition, { asOf });
    expect(names(page.ids)).toEqual([...expected].sort());
    // The same answer as the brute force over the facts as derived.
    const parsed = parseSegmentDefinition(definition);
    const brute = synthea.filter((f) => matches(parsed, { facts: f, authorized: new Set(), suppressed: false }, asOf)).map((f) => f.family!);
    expect(brute.sort()).toEqual([...expected].sort());
    expect((await service.count(definition, { asOf })).count).toBe(expected.length);
  });

  it('saves versions with the hash of the canonical definition, and snapshots membership at approval', async () => {
    const first = await service.save({ name: 'Prediabetic, uncovered', definition: { all: [{ type: 'condition', valueSet: 'prediabetes', status: 'active' }, { not: { type: 'coverage', active: true } }] }, actor: 'alice' });
    expect(first).toMatchObject({ created: true, version: 1, name: 'Prediabetic, uncovered' });
    expect(first.definitionHash).toBe(definitionHash(parseSegmentDefinition(first.definition)));
    // The same definition with keys in another order is the same version.
    const again = await service.save({ name: 'Prediabetic, uncovered', definition: { all: [{ status: 'active', valueSet: 'prediabetes', type: 'condition' }, { not: { active: true, type: 'coverage' } }] }, actor: 'bob' });
    expect(again).toMatchObject({ created: false, version: 1, versionId: first.versionId, definitionHash: first.definitionHash });
    const second = await service.save({ name: 'Prediabetic, uncovered', definition: { type: 'condition', valueSet: 'prediabetes' }, actor: 'bob' });
    expect(second).toMatchObject({ created: true, version: 2 });
    expect(second.definitionHash).not.toBe(first.definitionHash);
    expect((await service.list()).find((s) => s.name === 'Prediabetic, uncovered')).toMatchObject({ latestVersion: 2, latestVersionId: second.versionId, definitionHash: second.definitionHash });
    expect((await service.get('Prediabetic, uncovered', 1)).definitionHash).toBe(first.definitionHash);
    await expect(service.get('Prediabetic, uncovered', 9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(service.save({ name: 'bad', definition: { all: [{ type: 'age', min: 80, max: 20 }] }, actor: 'bob' })).rejects.toMatchObject({
      code: 'SEGMENT_INVALID',
      message: expect.stringContaining('all[0].max'),
    });

    const snapshot = await service.snapshotMembership(first.versionId, { actor: 'clinician-1', reason: 'campaign/7', asOf });
    expect(snapshot).toMatchObject({ segmentVersionId: first.versionId, definitionHash: first.definitionHash, memberCount: 2, asOf, reason: 'campaign/7' });
    const ids = await service.snapshotMembers(snapshot.id);
    expect(names(ids)).toEqual(['Green', 'Krajcik']);
    expect(await service.snapshotMembers(snapshot.id, { after: ids[0]!, limit: 5 })).toEqual([ids[1]]);
    expect(await service.getSnapshot(snapshot.id)).toMatchObject({ memberCount: 2, definitionHash: first.definitionHash });
    // Only ids are stored: no column of the snapshot tables can hold patient data.
    const columns = await store.db.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'segment_snapshot_members' AND table_schema = current_schema() ORDER BY column_name`,
    );
    expect(columns.map((c) => c.column_name)).toEqual(['patient_id', 'snapshot_id']);
  });

  it('pages members in id order, and previews a few masked members with one audit row each', async () => {
    const all = (await service.members({ type: 'state', value: 'MA' }, { asOf })).ids;
    expect(all).toEqual([...all].sort((a, b) => a - b));
    const first = await service.members({ type: 'state', value: 'MA' }, { asOf, limit: 5 });
    const rest = await service.members({ type: 'state', value: 'MA' }, { asOf, limit: 100, after: first.next! });
    expect(first.ids).toHaveLength(5);
    expect([...first.ids, ...rest.ids]).toEqual(all);
    expect(rest.next).toBeNull();

    const preview = await service.preview({ type: 'procedure', code: '73761001' }, { asOf, actor: 'alice', role: 'marketer', entity: 'segment/3' });
    expect(preview.count).toBe(2);
    expect(preview.members.map(({ id, ...m }) => ({ name: names([id])[0], ...m })).sort((a, b) => a.name!.localeCompare(b.name!))).toEqual([
      { name: 'Runte', initials: 'T. R.', ageBand: '50-59', gender: 'male', state: 'MA' },
      { name: 'Schmidt', initials: 'D. S.', ageBand: '50-59', gender: 'female', state: 'MA' },
    ]);
    const rows = [];
    for await (const r of audit.search({ actionPrefix: 'segment.' })) rows.push(r);
    expect(rows.map((r) => [r.action, r.actor, r.entity, r.patientBlind])).toEqual(
      preview.members.map((m) => ['segment.preview', 'alice', 'segment/3', audit.patientBlind(m.id)]),
    );
  });

  it('exports a segment as a FHIR Group of Patient references by source id, and as CRM ids', async () => {
    const definition = parseSegmentDefinition({ type: 'coverage', payer: 'humana' });
    const memberIds = (await service.members(definition, { asOf })).ids;
    const resolvePatientIds = async (ids: readonly number[]) => new Map([...(await facts.readFacts(ids))].map(([id, f]) => [id, f.patientId]));
    const { group, unresolved } = await segmentToFhirGroup({ memberIds, name: 'Humana', version: 1, definitionHash: definitionHash(definition), resolvePatientIds });
    expect(unresolved).toBe(0);
    expect(group).toMatchObject({ resourceType: 'Group', type: 'person', actual: true, quantity: 2 });
    expect(group.member!.map((m) => m.entity.reference).sort()).toEqual(
      [`Patient/${factsOf.get('Macejkovic')!.patientId}`, `Patient/${factsOf.get('Schmidt')!.patientId}`].sort(),
    );
    const crm = await segmentToCrmIds(memberIds, async (ids) => new Map(ids.filter((id) => id === idOf.get('Schmidt')).map((id) => [id, '003Hs00000ABCDE'])));
    expect(crm).toEqual({ crmIds: ['003Hs00000ABCDE'], unresolved: 1 });
  });

  it('runs outreach segment count, explain, save, list and export', async () => {
    const run = cliRunner([registerSegmentCommands], () => ({ db: store.db, cipher, audit, facts, segmentIndex: async () => live }));
    const file = join(dir, 'hot.json');
    writeFileSync(file, JSON.stringify({ all: [{ type: 'gender', value: 'male' }, { not: { type: 'lastVisit', withinDays: 365 } }] }));
    const count = await run(['segment', 'count', file, '--as-of', asOf]);
    expect(count.exitCode).toBe(0);
    expect(count.out).toMatchObject({ count: 7, total: 13, asOf });
    const inline = await run(['segment', 'count', '{"type":"gender","value":"female"}', '--as-of', asOf], false);
    expect(inline.text).toMatch(/^3 of 13 patients \(as of 2020-06-01\)/);
    const explain = await run(['segment', 'explain', file, '--as-of', asOf]);
    expect(explain.out.steps.map((s: { path: string; count: number; cumulative: number }) => [s.path, s.count, s.cumulative])).toEqual([
      ['(root)', 7, 7],
      ['all[0]', 10, 10],
      ['all[1]', 7, 7],
      ['all[1].not', 6, 6],
    ]);
    const bad = await run(['segment', 'count', '{"all":[{"type":"age","min":"forty"}]}']);
    expect(bad.exitCode).toBe(1);
    expect(bad.text).toContain('SEGMENT_INVALID');
    expect(bad.text).toContain('all[0].min');

    expect((await run(['segment', 'save', 'Lapsed men', file])).out).toMatchObject({ created: true, version: 1 });
    expect((await run(['segment', 'list'])).out.map((s: { name: string }) => s.name)).toContain('Lapsed men');
    const out = join(dir, 'group.json');
    const exported = await run(['segment', 'export', 'Lapsed men', '--as-of', asOf, '--out', out]);
    expect(exported.out).toEqual({ file: out, members: 7 });
    const { group } = JSON.parse(readFileSync(out, 'utf8')) as { group: { member: unknown[]; identifier: Array<{ value: string }> } };
    expect(group.member).toHaveLength(7);
    expect(group.identifier[0]!.value).toBe('Lapsed men/v1');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const exportRows = [];
    for await (const r of audit.search({ actionPrefix: 'segment.export' })) exportRows.push(r);
    expect(exportRows).toHaveLength(7);
    expect((await run(['segment', 'export', 'No such segment'])).text).toContain('NOT_FOUND');
    // CRM ids of the members linked to a Salesforce Contact; the others are counted, never named.
    const members = (await service.members(parseSegmentDefinition(JSON.parse(readFileSync(file, 'utf8'))), { asOf })).ids;
    await new ContactLinks(store.db, cipher).link([{ patientId: members[0]!, contactId: '003Hs00000QRSTU' }], 'email', new Date());
    const crm = await run(['segment', 'export', 'Lapsed men', '--as-of', asOf, '--format', 'crm']);
    expect(crm.out).toEqual({ crmIds: ['003Hs00000QRSTU'], unresolved: 6 });
  });

  // Last: it changes patients the tests above read.
  it('updates counts when a sync writes a new A1C or a new visit, and when an authorization is revoked, without a rebuild', async () => {
    const index = live.index;
    const hot = { all: [{ type: 'hba1c', op: '>', value: 9 }, { type: 'age', min: 40, max: 75 }, { not: { type: 'lastVisit', withinDays: 365 } }, { type: 'coverage', active: true }] };
    expect((await service.count(hot, { asOf })).count).toBe(0);

    // Schmidt (54, covered, seen 2020-02-23) gets an HbA1c of 9.4: still seen within the year.
    const schmidt = factsOf.get('Schmidt')!;
    const a1c = { loinc: '4548-4', value: 9.4, unit: '%', date: '2020-05-20T09:00:00-04:00' };
    await facts.upsertFacts([{ ...schmidt, a1c, observations: [...schmidt.observations, a1c] }]);
    expect(live.index).toBe(index);
    expect((await service.count({ type: 'hba1c', op: '>', value: 9 }, { asOf })).count).toBe(1);
    expect((await service.count(hot, { asOf })).count).toBe(0);
    // Evaluated on 2021-02-23, her visit is a year and a day old and her coverage runs to that day: she enters.
    expect((await service.count(hot, { asOf: '2021-02-23' })).count).toBe(1);
    expect((await service.count(hot, { asOf: '2021-02-22' })).count).toBe(0);

    // Runte (52, covered to 2020-09-05, last seen 2019-09-05) gets a high A1C: on 2020-09-05 he enters.
    const runte = factsOf.get('Runte')!;
    await facts.upsertFacts([{ ...runte, a1c: { ...a1c, value: 10.1 }, observations: [...runte.observations, { ...a1c, value: 10.1 }] }]);
    expect(names((await service.members(hot, { asOf: '2020-09-05' })).ids)).toEqual(['Runte']);
    // A new visit takes him out again.
    const visit = { date: '2020-08-15T10:00:00-04:00', types: [], reasons: [] };
    await facts.upsertFacts([{ ...runte, a1c: { ...a1c, value: 10.1 }, observations: [...runte.observations, { ...a1c, value: 10.1 }], lastVisit: visit, encounters: [visit, ...runte.encounters] }]);
    expect((await service.count(hot, { asOf: '2020-09-05' })).count).toBe(0);

    // Authorization: marketing needs a grant; a revocation and a channel opt-out show at once.
    const marketing = { type: 'authorized', purpose: 'marketing' };
    expect((await service.count(marketing, { asOf })).count).toBe(0);
    expect((await service.count({ type: 'authorized', purpose: 'appointment-reminder' }, { asOf })).count).toBe(13);
    for (const family of ['Schmidt', 'Hoppe']) {
      await consent.grant({ patientId: idOf.get(family)!, channel: 'email', source: 'signed-form', textVersion: 'v1', purpose: 'marketing' }, operator);
    }
    await live.settled();
    expect(names((await service.members(marketing, { asOf })).ids)).toEqual(['Hoppe', 'Schmidt']);
    await consent.revoke({ patientId: idOf.get('Hoppe')!, channel: 'email', source: 'admin', purpose: 'marketing' }, operator);
    await live.settled();
    expect(names((await service.members(marketing, { asOf })).ids)).toEqual(['Schmidt']);
    await consent.optOut({ patientId: idOf.get('Schmidt')!, channel: 'email', source: 'unsubscribe-link' }, operator);
    await live.settled();
    expect((await service.count(marketing, { asOf })).count).toBe(0);
    expect((await service.count({ type: 'notSuppressed' }, { asOf })).count).toBe(12);
    expect(live.index).toBe(index);
  });

  it('applies writes that commit while the index is being built, after the pages read before them', async () => {
    const green = factsOf.get('Green')!;
    const updated = { ...green, a1c: { loinc: '4548-4', value: 11.2, date: '2020-05-01' } };
    let wrote = false;
    const second = await openLiveSegmentIndex({
      consent,
      facts: {
        onFactsWritten: (listener) => facts.onFactsWritten(listener),
        // The real repository, read two patients a page, with a sync committing after the first page.
        async *iterateAllFacts() {
          for await (const page of facts.iterateAllFacts(2)) {
            yield page;
            if (!wrote && page.some((p) => p.id === idOf.get('Green'))) {
              wrote = true;
              await facts.upsertFacts([updated]);
            }
          }
        },
      },
    });
    try {
      expect(wrote).toBe(true);
      const rows = setRowsAfter(evaluateSegment(second.index, parseSegmentDefinition({ type: 'hba1c', op: '>', value: 11 }), dayNumber(asOf)), -1, 100);
      expect(names(rows)).toEqual(['Green']);
      expect(second.index.size).toBe(13);
    } finally {
      second.close();
    }
  });

  it('refuses an unknown evaluation day format', async () => {
    await expect(service.count({ type: 'notSuppressed' }, { asOf: '06/01/2020' })).rejects.toBeInstanceOf(OutreachError);
  });
});
