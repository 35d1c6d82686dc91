// Segment engine benchmark: 1M synthetic patients, the columnar index's warm count against the same query as SQL on PostgreSQL.
import { availableParallelism, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { phi } from '../../fhir/phi.js';
import { birthCutoff, dayNumber, isoDay, NO_DAY } from '../../connector/segments/day-number.js';
import { parseSegmentDefinition } from '../../connector/segments/definition.js';
import { SegmentRepository } from '../../connector/segments/segment-repository.js';
import { SegmentService } from '../../connector/segments/segment-service.js';
import { openDb, type Db } from '../../connector/store/db.js';
import { SegmentIndex, type IndexedFacts } from '../../connector/segments/segment-index.js';
import { seededRandom } from '../../connector/demo/seeded-random.js';

const PATIENTS = Number(process.argv[2] ?? 1_000_000);
const RUNS = 60;
const SQL_RUNS = 15;
const AS_OF = '2026-06-30';
const postgresUrl = 'postgres://postgres@127.0.0.1:5432/test';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const states = ['MA', 'NY', 'CA', 'TX', 'FL', 'WA', 'IL', 'PA', 'OH', 'GA', 'NC', 'MI', 'NJ', 'VA', 'AZ', 'TN', 'IN', 'MO', 'MD', 'WI'];
const payers = ['Medicare', 'Medicaid', 'Blue Cross Blue Shield', 'Aetna', 'Cigna', 'UnitedHealthcare', 'Humana', 'Anthem'];
const conditionCodes = ['44054006', '38341003', '59621000', '195967001', '15777000', '433144002', '162864005', '40055000', '55822004', '10509002', ...Array.from({ length: 190 }, (_, i) => String(100000 + i * 37))];
const labCodes = ['2339-0', '2093-3', '2085-9', '18262-6', '33914-3', '8480-6', '8462-4', '39156-5'];
const procedureCodes = Array.from({ length: 120 }, (_, i) => String(430000000 + i * 101));
const medicationCodes = Array.from({ length: 150 }, (_, i) => String(310000 + i * 13));
const asOfDay = dayNumber(AS_OF);

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
/** ISO strings of every day the generator uses (Date formatting per fact would dominate the run). */
const firstDay = asOfDay - 36_600;
const isoDays = Array.from({ length: 36_700 }, (_, i) => isoDay(firstDay + i));
const iso = (day: number) => isoDays[day - firstDay]!;
const dateBefore = (r: () => number, maxDaysAgo: number) => iso(asOfDay - Math.floor(r() * maxDaysAgo));

/** One synthetic patient, a pure function of its id. */
function syntheticPatient(id: number): PatientFacts {
  const r = seededRandom(id * 2654435761);
  const diabetic = r() < 0.12;
  const birthDay = asOfDay - Math.floor(r() * 95 * 365.25);
  const visited = r() < 0.85;
  const visitDate = dateBefore(r, 3 * 365);
  const conditions = Array.from({ length: Math.floor(r() * 5) }, () => ({
    codes: [{ system: 'http://snomed.info/sct', code: pick(r, conditionCodes) }],
    clinicalStatus: r() < 0.7 ? 'active' : 'resolved',
  }));
  if (diabetic) conditions.push({ codes: [{ system: 'http://snomed.info/sct', code: '44054006' }], clinicalStatus: 'active' });
  const a1c = diabetic || r() < 0.15 ? { loinc: '4548-4', value: Math.round((4.5 + r() * (diabetic ? 9 : 3)) * 10) / 10, unit: '%', date: dateBefore(r, 2 * 365) } : undefined;
  const observations = Array.from({ length: 2 + Math.floor(r() * 3) }, () => ({ loinc: pick(r, labCodes), value: Math.round(r() * 2000) / 10, date: dateBefore(r, 4 * 365) }));
  if (a1c) observations.push(a1c);
  const coverage = Array.from({ length: 1 + Math.floor(r() * 2) }, () => {
    const active = r() < 0.8;
    return { payer: pick(r, payers), active, start: dateBefore(r, 10 * 365), ...(active ? {} : { end: dateBefore(r, 365) }), source: 'Coverage' as const };
  });
  return {
    patientId: `p${id}`,
    source: 'bench',
    given: phi(String.fromCharCode(65 + Math.floor(r() * 26)) + 'x'),
    family: phi(String.fromCharCode(65 + Math.floor(r() * 26)) + 'y'),
    gender: r() < 0.5 ? 'female' : 'male',
    birthDate: phi(iso(birthDay)),
    deceased: false,
    city: phi(`city-${Math.floor(r() * 500)}`),
    state: pick(r, states),
    postalCode: phi(String(10000 + Math.floor(r() * 80000))),
    pcp: { reference: `Practitioner/${Math.floor(r() * 2000)}`, source: 'encounters' },
    ...(visited
      ? { lastVisit: { date: visitDate, types: [], reasons: r() < 0.3 ? [{ system: 'http://snomed.info/sct', code: pick(r, conditionCodes) }] : [] } }
      : {}),
    encounters: [],
    conditions,
    observations,
    ...(a1c ? { a1c } : {}),
    coverage,
    procedures: Array.from({ length: Math.floor(r() * 4) }, () => ({ codes: [{ system: 'http://snomed.info/sct', code: pick(r, procedureCodes) }], date: dateBefore(r, 5 * 365) })),
    medications: Array.from({ length: Math.floor(r() * 3) }, () => ({ codes: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: pick(r, medicationCodes) }], authoredOn: dateBefore(r, 5 * 365) })),
    appointments: r() < 0.1 ? [{ id: `a${id}`, status: 'booked', start: iso(asOfDay + Math.floor(r() * 60)), types: [] }] : [],
  };
}

function* patients(): Generator<IndexedFacts> {
  for (let id = 1; id <= PATIENTS; id++) yield { id, facts: syntheticPatient(id) };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const ms = (x: number) => `${x.toFixed(2)} ms`;

const query = parseSegmentDefinition({
  all: [
    { type: 'hba1c', op: '>', value: 9 },
    { type: 'age', min: 40, max: 75 },
    { not: { type: 'lastVisit', withinDays: 365 } },
    { type: 'coverage', active: true },
  ],
});

// The plaintext columns PostgreSQL gets, captured in the same pass (allocated before the memory baseline).
const plain = {
  birth: new Int32Array(PATIENTS),
  visit: new Int32Array(PATIENTS),
  a1c: new Float64Array(PATIENTS),
  a1cDay: new Int32Array(PATIENTS),
  gender: new Uint8Array(PATIENTS),
  state: new Uint8Array(PATIENTS),
  coverage: { patient: new Int32Array(2 * PATIENTS), payer: new Uint8Array(2 * PATIENTS), active: new Uint8Array(2 * PATIENTS), start: new Int32Array(2 * PATIENTS), end: new Int32Array(2 * PATIENTS), length: 0 },
};

// --- our index
gc();
const heapBefore = process.memoryUsage();
let started = performance.now();
// The build as the connector runs it (upsert per decrypted patient); the time in upsert alone is kept apart from the
// time spent generating the synthetic facts.
const index = new SegmentIndex();
let ingestMs = 0;
for (const { id, facts } of patients()) {
  const t = performance.now();
  index.upsert(id, facts);
  ingestMs += performance.now() - t;
  const i = id - 1;
  plain.birth[i] = dayNumber(facts.birthDate);
  plain.visit[i] = dayNumber(facts.lastVisit?.date);
  plain.a1c[i] = facts.a1c?.value ?? Number.NaN;
  plain.a1cDay[i] = dayNumber(facts.a1c?.date);
  plain.gender[i] = facts.gender === 'female' ? 1 : 0;
  plain.state[i] = states.indexOf(facts.state!);
  const c = plain.coverage;
  for (const cov of facts.coverage) {
    c.patient[c.length] = id;
    c.payer[c.length] = payers.indexOf(cov.payer!);
    c.active[c.length] = cov.active ? 1 : 0;
    c.start[c.length] = dayNumber(cov.start);
    c.end[c.length] = dayNumber(cov.end);
    c.length++;
  }
}
const sortStarted = performance.now();
index.sortA1c();
ingestMs += performance.now() - sortStarted;
const buildMs = performance.now() - started;
gc();
const heapAfter = process.memoryUsage();
const indexHeap = heapAfter.heapUsed + heapAfter.arrayBuffers - heapBefore.heapUsed - heapBefore.arrayBuffers;

// `count` as callers use it (parse, evaluate, popcount, hash); its store is the benchmark's own PostgreSQL schema.
const schema = `bench_segments_${process.pid}`;
let db: Db | undefined;
try {
  db = await openDb({ databaseUrl: postgresUrl, schema, poolSize: 2 });
} catch (err) {
  process.stdout.write(`PostgreSQL at ${postgresUrl} is not reachable (${(err as Error).message}): no baseline\n`);
}
const service = db
  ? new SegmentService({ index: async () => index, repository: new SegmentRepository(db), audit: async () => undefined })
  : undefined;
const WARMUP = 10;
const times: number[] = [];
let ours = 0;
let cpuBefore = process.cpuUsage();
for (let i = 0; i < RUNS; i++) {
  if (i === WARMUP) cpuBefore = process.cpuUsage();
  const t = performance.now();
  ours = service ? (await service.count(query, { asOf: AS_OF })).count : -1;
  times.push(performance.now() - t);
}
const cpu = process.cpuUsage(cpuBefore);
const cpuPerCount = (cpu.user + cpu.system) / 1000 / (RUNS - WARMUP);
const warm = times.slice(WARMUP);
const p50 = percentile(warm, 0.5);
const p99 = percentile(warm, 0.99);

// --- PostgreSQL over plaintext columns, in the same schema (dropped at the end)
let sqlP50 = Number.NaN;
let sqlP99 = Number.NaN;
let sqlSerialP50 = Number.NaN;
let sqlCount = -1;
let loadMs = 0;
if (db) {
  try {
    await db.exec(`CREATE UNLOGGED TABLE bench_patient (id int PRIMARY KEY, gender text, birth_date date, state text, last_visit date, a1c_value numeric, a1c_date date)`);
    await db.exec(`CREATE UNLOGGED TABLE bench_coverage (patient_id int NOT NULL, payer text, active boolean NOT NULL, start_date date, end_date date)`);
    started = performance.now();
    const batch = 100_000;
    const day = (d: number) => (d === NO_DAY ? null : iso(d));
    for (let from = 0; from < PATIENTS; from += batch) {
      const to = Math.min(from + batch, PATIENTS);
      const ids: number[] = [];
      const cols = { gender: [] as string[], birth: [] as (string | null)[], state: [] as string[], visit: [] as (string | null)[], a1c: [] as (number | null)[], a1cDate: [] as (string | null)[] };
      for (let i = from; i < to; i++) {
        ids.push(i + 1);
        cols.gender.push(plain.gender[i] ? 'female' : 'male');
        cols.birth.push(day(plain.birth[i]!));
        cols.state.push(states[plain.state[i]!]!);
        cols.visit.push(day(plain.visit[i]!));
        cols.a1c.push(Number.isNaN(plain.a1c[i]!) ? null : plain.a1c[i]!);
        cols.a1cDate.push(day(plain.a1cDay[i]!));
      }
      await db.query(
        `INSERT INTO bench_patient SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::text[], $5::date[], $6::numeric[], $7::date[])`,
        [ids, cols.gender, cols.birth, cols.state, cols.visit, cols.a1c, cols.a1cDate],
      );
    }
    const c = plain.coverage;
    for (let from = 0; from < c.length; from += batch) {
      const to = Math.min(from + batch, c.length);
      const rows = { id: [] as number[], payer: [] as string[], active: [] as boolean[], start: [] as (string | null)[], end: [] as (string | null)[] };
      for (let i = from; i < to; i++) {
        rows.id.push(c.patient[i]!);
        rows.payer.push(payers[c.payer[i]!]!);
        rows.active.push(c.active[i] === 1);
        rows.start.push(day(c.start[i]!));
        rows.end.push(day(c.end[i]!));
      }
      await db.query(`INSERT INTO bench_coverage SELECT * FROM unnest($1::int[], $2::text[], $3::bool[], $4::date[], $5::date[])`, [rows.id, rows.payer, rows.active, rows.start, rows.end]);
    }
    await db.exec(`CREATE INDEX ON bench_patient (a1c_value); CREATE INDEX ON bench_patient (birth_date); CREATE INDEX ON bench_patient (last_visit)`);
    await db.exec(`CREATE INDEX ON bench_coverage (patient_id) WHERE active; ANALYZE bench_patient; ANALYZE bench_coverage`);
    loadMs = performance.now() - started;
    // The same semantics as the index: age 40-75 on the evaluation day, no visit in [asOf-365, asOf], coverage active on it.
    const sql = `SELECT count(*)::int AS n FROM bench_patient p
      WHERE p.a1c_value > 9
        AND p.birth_date > $1::date AND p.birth_date <= $2::date
        AND NOT (p.last_visit IS NOT NULL AND p.last_visit >= $3::date AND p.last_visit <= $4::date)
        AND EXISTS (SELECT 1 FROM bench_coverage c WHERE c.patient_id = p.id AND c.active
                     AND (c.start_date IS NULL OR c.start_date <= $4::date) AND (c.end_date IS NULL OR c.end_date >= $4::date))`;
    const params = [isoDay(birthCutoff(asOfDay, 76)), isoDay(birthCutoff(asOfDay, 40)), isoDay(asOfDay - 365), AS_OF];
    const sqlTimes: number[] = [];
    for (let i = 0; i < SQL_RUNS; i++) {
      const t = performance.now();
      const rows = await db.query<{ n: number }>(sql, params);
      sqlTimes.push(performance.now() - t);
      sqlCount = rows[0]!.n;
    }
    const sqlWarm = sqlTimes.slice(3);
    sqlP50 = percentile(sqlWarm, 0.5);
    sqlP99 = percentile(sqlWarm, 0.99);
    // For reference: PostgreSQL held to one process, as the index is one thread.
    const serialTimes = await db.transaction(async (tx) => {
      await tx.query('SET LOCAL max_parallel_workers_per_gather = 0');
      const out: number[] = [];
      for (let i = 0; i < SQL_RUNS; i++) {
        const t = performance.now();
        await tx.query(sql, params);
        out.push(performance.now() - t);
      }
      return out;
    });
    sqlSerialP50 = percentile(serialTimes.slice(3), 0.5);
  } catch (err) {
    process.stdout.write(`PostgreSQL baseline failed: ${(err as Error).message}\n`);
  } finally {
    await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await db.close().catch(() => undefined);
  }
}

const lines = [
  `machine: ${availableParallelism()} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} (other work slows both sides)`,
  `patients: ${PATIENTS.toLocaleString('en-US')}  query: HbA1c > 9 AND age 40-75 AND no visit in 365 days AND active coverage (as of ${AS_OF})`,
  `index build: ${(ingestMs / 1000).toFixed(1)} s in upserts (${(buildMs / 1000).toFixed(1)} s with generating the synthetic facts)`,
  `index memory: ${mib(index.bytes())} in typed arrays, ${mib(indexHeap)} heap+buffers after GC (target <= 1024 MiB)`,
  `segment index count: ${ours.toLocaleString('en-US')}  p50 ${ms(p50)}  p99 ${ms(p99)}  (warm, ${warm.length} runs; ${ms(cpuPerCount)} CPU a count; target p50 <= 50 ms)`,
  `PostgreSQL count:    ${sqlCount.toLocaleString('en-US')}  p50 ${ms(sqlP50)}  p99 ${ms(sqlP99)}  (warm, ${SQL_RUNS - 3} runs; load + indexes ${(loadMs / 1000).toFixed(1)} s)`,
  `PostgreSQL without parallel workers: p50 ${ms(sqlSerialP50)} (${(sqlSerialP50 / p50).toFixed(1)}x)`,
  `ratio (PostgreSQL p50 / index p50): ${(sqlP50 / p50).toFixed(1)}x  (target >= 20x)`,
];
process.stdout.write(lines.join('\n') + '\n');
if (sqlCount >= 0 && sqlCount !== ours) {
  process.stdout.write(`MISMATCH: the index counted ${ours}, PostgreSQL ${sqlCount}\n`);
  process.exitCode = 1;
}
