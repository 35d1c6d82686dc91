// Bench: sealed batch writes of patient facts (patients/s) against plain jsonb INSERTs of the same facts, plus seal/open cost.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { openDb, type Db } from '../../connector/store/db.js';
import { FactsRepository } from '../../connector/store/facts-repository.js';
import { Keyring } from '../../connector/store/keyring.js';
import { generateMasterKey, localKmsProvider } from '../../connector/store/master-key.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { syntheticFacts } from '../connector/store/synthetic-facts.js';
import { hasPostgres, postgresUrl } from '../support/postgres.js';

const patients = Number(process.argv[2] ?? 10_000);
const batchSize = 1000;
const out = (line: string) => process.stdout.write(line + '\n');

async function plainWrite(db: Db, facts: readonly PatientFacts[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO bench_plain (source, patient_id, facts)
       SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
       ON CONFLICT (source, patient_id) DO UPDATE SET facts = excluded.facts, updated_at = now()`,
      [facts.map((f) => f.source), facts.map((f) => f.patientId), facts.map((f) => JSON.stringify(f))],
    );
  });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function benchStore(kind: 'pglite' | 'postgres', facts: readonly PatientFacts[]): Promise<void> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const db = kind === 'postgres' ? await openDb({ databaseUrl: postgresUrl, schema }) : await openDb();
  try {
    await db.exec(`CREATE TABLE bench_plain (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, source text NOT NULL, patient_id text NOT NULL, facts jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(), UNIQUE (source, patient_id))`);
    const keyring = await Keyring.open(db, localKmsProvider(generateMasterKey()));
    const repo = new FactsRepository(db, keyring);
    const batches = Array.from({ length: Math.ceil(facts.length / batchSize) }, (_, i) => facts.slice(i * batchSize, (i + 1) * batchSize));
    // Warm up both paths (JIT, plan caches) on a separate source, then measure inserts and then replacements.
    const warm = facts.slice(0, 200).map((f) => ({ ...f, source: 'warm-up' }));
    await repo.writeFacts(warm);
    await plainWrite(db, warm);
    for (const phase of ['insert', 'replace'] as const) {
      // Alternate which goes first so neither always gets the colder cache.
      const plainMs = await timed(async () => {
        for (const b of batches) await plainWrite(db, b);
      });
      const sealedMs = await timed(async () => {
        for (const b of batches) await repo.writeFacts(b);
      });
      const plainRate = facts.length / (plainMs / 1000);
      const sealedRate = facts.length / (sealedMs / 1000);
      out(
        `${kind.padEnd(8)} ${phase.padEnd(7)} sealed ${sealedRate.toFixed(0).padStart(7)} patients/s · plain jsonb ${plainRate
          .toFixed(0)
          .padStart(7)} patients/s · sealed/plain ${(sealedRate / plainRate).toFixed(2)}x (${facts.length} patients, batches of ${batchSize})`,
      );
    }
    let read = 0;
    const readMs = await timed(async () => {
      for await (const page of repo.iterateAllFacts(1000)) read += page.length;
    });
    const plainReadMs = await timed(async () => {
      let after = 0;
      for (;;) {
        const rows = await db.query<{ id: number | string; facts: unknown }>('SELECT id, facts FROM bench_plain WHERE id > $1 ORDER BY id LIMIT 1000', [after]);
        if (rows.length === 0) break;
        after = Number(rows[rows.length - 1]!.id);
      }
    });
    out(
      `${kind.padEnd(8)} read    sealed ${(read / (readMs / 1000)).toFixed(0).padStart(7)} patients/s · plain jsonb ${(read / (plainReadMs / 1000))
        .toFixed(0)
        .padStart(7)} patients/s · sealed/plain ${(plainReadMs / readMs).toFixed(2)}x (iterateAllFacts, pages of 1000)`,
    );
  } finally {
    if (kind === 'postgres') await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
  }
}

async function benchCipher(): Promise<void> {
  const db = await openDb();
  const keyring = await Keyring.open(db, localKmsProvider(generateMasterKey()));
  const text = JSON.stringify(syntheticFacts(1));
  const at = { table: 'patients', column: 'facts', rowId: '123456' };
  const n = 100_000;
  const key = randomBytes(32);
  const aad = Buffer.from('patients|facts|123456');
  const raw = () => {
    const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
    c.setAAD(aad);
    const body = Buffer.concat([c.update(text, 'utf8'), c.final()]);
    return { body, tag: c.getAuthTag() };
  };
  const us = (fn: () => void) => {
    for (let i = 0; i < 2000; i++) fn();
    const t = performance.now();
    for (let i = 0; i < n; i++) fn();
    return ((performance.now() - t) * 1000) / n;
  };
  const rawSeal = us(raw);
  const seal = us(() => keyring.seal(text, at));
  const sample = raw();
  const iv = randomBytes(12);
  const rawOpen = us(() => {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(aad);
    d.update(sample.body);
    try {
      d.final();
    } catch {
      // (the IV differs from the sealing one: the cost is the same, the tag check fails)
    }
  });
  const sealed = keyring.seal(text, at);
  const open = us(() => keyring.open(sealed, at));
  const bidx = us(() => keyring.blindIndex('email', 'Patient1@Example.org'));
  out(`cipher   seal ${seal.toFixed(2)} µs vs raw AES-256-GCM ${rawSeal.toFixed(2)} µs (${(seal / rawSeal).toFixed(2)}x) · ${text.length}-byte facts JSON`);
  out(`cipher   open ${open.toFixed(2)} µs vs raw AES-256-GCM ${rawOpen.toFixed(2)} µs (${(open / rawOpen).toFixed(2)}x) · blind index ${bidx.toFixed(2)} µs`);
  await db.close();
}

const facts = Array.from({ length: patients }, (_, i) => syntheticFacts(i));
await benchCipher();
await benchStore('pglite', facts);
if (hasPostgres) await benchStore('postgres', facts);
else out('postgres skipped: not reachable');
