// The patients store: sealed facts round-trip, look-ups by blind index, change notifications, quarantine and sync state.
import type { Consent } from 'fhir/r4.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../connector/store/db.js';
import { FactsRepository, type StoredFacts } from '../../../connector/store/facts-repository.js';
import { Keyring } from '../../../connector/store/keyring.js';
import { generateMasterKey, localKmsProvider } from '../../../connector/store/master-key.js';
import { phi } from '../../../fhir/phi.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { cleanStore } from './clean-store.js';
import { syntheticFacts } from './synthetic-facts.js';

describe.each(storeKinds)('facts repository on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let keyring: Keyring;
  let repo: FactsRepository;
  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await cleanStore(db);
    keyring = await Keyring.open(db, localKmsProvider(generateMasterKey()));
    repo = new FactsRepository(db, keyring);
  });

  it('writes a batch sealed and reads the same facts back by internal id', async () => {
    const batch = [syntheticFacts(1), syntheticFacts(2), syntheticFacts(3)];
    const ids = await repo.upsertFacts(batch);
    expect(new Set(ids).size).toBe(3);
    const read = await repo.readFacts([...ids, 999_999]);
    expect(read.size).toBe(3);
    expect(read.get(ids[1]!)).toEqual(batch[1]);
    const [row] = await db.query<{ facts: Uint8Array; source: string }>('SELECT facts, source FROM patients WHERE id = $1', [ids[0]]);
    expect(row!.source).toBe('test-ehr');
    expect(Buffer.from(row!.facts).includes('Ada')).toBe(false);
    expect(Buffer.from(row!.facts).includes('patient1@example.org')).toBe(false);
  });

  it('replaces a patient on re-write and keeps its internal id; the same patient twice in a batch: last wins', async () => {
    const [id] = await repo.upsertFacts([syntheticFacts(7)]);
    const changed = { ...syntheticFacts(7), family: phi('Renamed') };
    const ids = await repo.upsertFacts([syntheticFacts(8), { ...changed, family: phi('First') }, changed]);
    expect(ids[1]).toBe(id);
    expect(ids[2]).toBe(id);
    expect((await repo.readFacts([id!])).get(id!)?.family).toBe('Renamed');
    expect(await repo.count()).toBe(2);
    expect(await repo.idOf('test-ehr', 'pat-7')).toBe(id);
    expect(await repo.idOf('other-ehr', 'pat-7')).toBeUndefined();
  });

  // PGlite is one connection: only PostgreSQL has a second writer to race with.
  if (kind === 'postgres') it('a patient another writer inserts mid-batch is updated under its row id, never duplicated', async () => {
    let raced = false;
    const racing: Db = {
      ...db,
      transaction: (fn) =>
        db.transaction((tx) =>
          fn({
            ...tx,
            query: async (sql, params) => {
              if (!raced && sql.includes('OVERRIDING SYSTEM VALUE')) {
                raced = true;
                // Another connection commits the same patient between our look-up and our insert.
                await repo.upsertFacts([{ ...syntheticFacts(5), family: phi('Rival') }]);
              }
              return tx.query(sql, params);
            },
          }),
        ),
    };
    const ours = new FactsRepository(racing, keyring);
    const [id] = await ours.upsertFacts([syntheticFacts(5)]);
    expect(raced).toBe(true);
    expect(await repo.count()).toBe(1);
    expect(await repo.idOf('test-ehr', 'pat-5')).toBe(id);
    expect((await repo.readFacts([id!])).get(id!)?.family).toBe(syntheticFacts(5).family);
  });

  it('keeps the same source patient id from two endpoints apart', async () => {
    const ids = await repo.upsertFacts([syntheticFacts(1, 'ehr-a'), syntheticFacts(1, 'ehr-b')]);
    expect(ids[0]).not.toBe(ids[1]);
    const loaded = await repo.loadFacts('ehr-b', ['pat-1', 'pat-404']);
    expect([...loaded.keys()]).toEqual(['pat-1']);
    expect(loaded.get('pat-1')?.source).toBe('ehr-b');
  });

  it('finds patients by email (normalised), MRN and CRM id through blind indexes only', async () => {
    const [a, b] = await repo.upsertFacts([syntheticFacts(1), syntheticFacts(2)]);
    expect(await repo.findByEmail('  PATIENT1@Example.org ')).toEqual([a]);
    expect(await repo.findByEmail('nobody@example.org')).toEqual([]);
    expect(await repo.findByMrn('MRN100002')).toEqual([b]);
    expect(await repo.findByMrn('MRN100002', 'other-ehr')).toEqual([]);
    await repo.setCrmId(b!, '0035g00000AbCdE');
    expect(await repo.findByCrmId('0035g00000AbCdE')).toEqual([b]);
    await repo.setCrmId(b!, null);
    expect(await repo.findByCrmId('0035g00000AbCdE')).toEqual([]);
    await expect(repo.setCrmId(123_456, 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // The email changes: the old address no longer finds the patient.
    await repo.upsertFacts([{ ...syntheticFacts(1), email: phi('moved@example.org') }]);
    expect(await repo.findByEmail('patient1@example.org')).toEqual([]);
    expect(await repo.findByEmail('moved@example.org')).toEqual([a]);
    const [cols] = await db.query<{ email_bidx: Uint8Array }>('SELECT email_bidx FROM patients WHERE id = $1', [a]);
    expect(Buffer.from(cols!.email_bidx).includes('moved')).toBe(false);
  });

  it('iterates every patient in id order, page by page', async () => {
    await repo.upsertFacts(Array.from({ length: 25 }, (_, i) => syntheticFacts(i)));
    const pages: StoredFacts[][] = [];
    for await (const page of repo.iterateAllFacts(10)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    const ids = pages.flat().map((s) => s.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(pages.flat().map((s) => s.facts.patientId).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `pat-${i}`).sort());
    const none: StoredFacts[][] = [];
    await cleanStore(db);
    keyring = await Keyring.open(db, localKmsProvider(generateMasterKey()));
    for await (const page of new FactsRepository(db, keyring).iterateAllFacts()) none.push(page);
    expect(none).toEqual([]);
  });

  it('tells listeners the internal ids and facts of each committed batch; a failing listener does not fail the write', async () => {
    const seen: StoredFacts[][] = [];
    const off = repo.onFactsWritten((w) => void seen.push([...w]));
    repo.onFactsWritten(() => {
      throw new Error('listener bug');
    });
    const ids = await repo.upsertFacts([syntheticFacts(1), syntheticFacts(2)]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.map((s) => s.id)).toEqual(ids);
    expect(seen[0]![0]!.facts.patientId).toBe('pat-1');
    off();
    await repo.upsertFacts([syntheticFacts(3)]);
    expect(seen).toHaveLength(1);
  });

  it('refuses a batch holding a patient without a source: nothing written, nobody notified', async () => {
    const seen: number[] = [];
    repo.onFactsWritten((w) => void seen.push(w.length));
    await expect(repo.upsertFacts([syntheticFacts(1), { ...syntheticFacts(2), source: '' }])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(seen).toEqual([]);
    expect(await repo.count()).toBe(0);
  });

  it('facts moved to another patient row fail to open', async () => {
    const [a, b] = await repo.upsertFacts([syntheticFacts(1), syntheticFacts(2)]);
    await db.query('UPDATE patients SET facts = (SELECT facts FROM patients WHERE id = $1) WHERE id = $2', [a, b]);
    await expect(repo.readFacts([b!])).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
    expect((await repo.readFacts([a!])).get(a!)?.patientId).toBe('pat-1');
  });

  it('quarantines without resource ids or values, and lists the reasons back', async () => {
    await repo.quarantine([
      { endpoint: 'ehr', resourceType: 'Observation', resourceId: 'obs-secret-77', path: 'Observation.valueQuantity.value', reason: 'expected number', at: '2024-05-01T00:00:00Z' },
      { endpoint: 'ehr', path: '(json)', reason: 'unparsable line', file: 'https://ehr.example/out/Patient.ndjson', line: 12, at: '2024-05-01T00:00:01Z' },
      { endpoint: 'other', path: 'Patient.birthDate', reason: 'bad date', at: '2024-05-01T00:00:02Z' },
    ]);
    const listed = await repo.listQuarantine({ endpoint: 'ehr' });
    expect(listed).toHaveLength(2);
    expect(listed[0]).toMatchObject({ endpoint: 'ehr', path: '(json)', file: 'https://ehr.example/out/Patient.ndjson', line: 12 });
    expect(listed[1]).toMatchObject({ resourceType: 'Observation', path: 'Observation.valueQuantity.value', reason: 'expected number' });
    expect(await repo.countQuarantine()).toBe(3);
    const dump = JSON.stringify(await db.query("SELECT *, encode(resource_bidx, 'escape') AS raw FROM quarantine"));
    expect(dump).not.toContain('obs-secret-77');
  });

  it('keeps the sync state per endpoint', async () => {
    expect(await repo.getSyncState('ehr')).toBeUndefined();
    await repo.setSyncState({ endpoint: 'ehr', since: '2024-05-01T10:00:00.123+02:00', mode: 'bulk', updatedAt: '2024-05-01T08:00:05.000Z' });
    await repo.setSyncState({ endpoint: 'ehr2', mode: 'search', updatedAt: '2024-05-02T00:00:00.000Z' });
    expect(await repo.getSyncState('ehr')).toEqual({ endpoint: 'ehr', since: '2024-05-01T10:00:00.123+02:00', mode: 'bulk', updatedAt: '2024-05-01T08:00:05.000Z' });
    await repo.setSyncState({ endpoint: 'ehr', since: '2024-06-01T00:00:00Z', mode: 'search', updatedAt: '2024-06-01T00:00:01.000Z' });
    expect(await repo.getSyncState('ehr')).toMatchObject({ since: '2024-06-01T00:00:00Z', mode: 'search' });
    expect(await repo.getSyncState('ehr2')).toEqual({ endpoint: 'ehr2', mode: 'search', updatedAt: '2024-05-02T00:00:00.000Z' });
  });

  it('forwards consents to the authorization registry once one is wired', async () => {
    const consent: Consent = {
      resourceType: 'Consent',
      id: 'c1',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    };
    await repo.writeConsents('ehr', [consent]);
    const got: Array<[string, number]> = [];
    repo.setConsentSink({ writeConsents: async (source, consents) => void got.push([source, consents.length]) });
    await repo.writeConsents('ehr', [consent, consent]);
    await repo.writeConsents('ehr', []);
    expect(got).toEqual([['ehr', 2]]);
  });

  it('reads facts rotated to a new key version, and after the reseal', async () => {
    const ids = await repo.upsertFacts([syntheticFacts(1), syntheticFacts(2)]);
    await keyring.rotate();
    await repo.upsertFacts([syntheticFacts(3)]);
    const read = await repo.readFacts(ids);
    expect(read.get(ids[0]!)?.patientId).toBe('pat-1');
    const { runResealJobs } = await import('../../../connector/store/reseal-job.js');
    expect(await runResealJobs(db, keyring)).toBe(2);
    expect((await repo.readFacts(ids)).get(ids[1]!)?.patientId).toBe('pat-2');
    await keyring.retire(1);
    let n = 0;
    for await (const page of repo.iterateAllFacts()) n += page.length;
    expect(n).toBe(3);
  });

  it('writes 5,000 patients in sealed batches about as fast as plain jsonb inserts of the same facts', async () => {
    const facts = Array.from({ length: 5000 }, (_, i) => syntheticFacts(i));
    await db.exec(`DROP TABLE IF EXISTS t_plain; CREATE TABLE t_plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      source text NOT NULL, patient_id text NOT NULL, facts jsonb NOT NULL, UNIQUE (source, patient_id))`);
    let t = performance.now();
    for (let i = 0; i < facts.length; i += 1000) {
      const b = facts.slice(i, i + 1000);
      await db.transaction((tx) =>
        tx.query('INSERT INTO t_plain (source, patient_id, facts) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])', [
          b.map((f) => f.source),
          b.map((f) => f.patientId),
          b.map((f) => JSON.stringify(f)),
        ]),
      );
    }
    const plainMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < facts.length; i += 1000) await repo.writeFacts(facts.slice(i, i + 1000));
    const sealedMs = performance.now() - t;
    await db.exec('DROP TABLE t_plain');
    expect(await repo.count()).toBe(5000);
    expect(await repo.findByEmail('patient4321@example.org')).toHaveLength(1);
    // About 1 s on an idle machine (test/bench/store.ts prints the figures); the ratio holds under any load.
    expect(sealedMs).toBeLessThan(plainMs * 4);
    expect(sealedMs).toBeLessThan(60_000);
  });
});
