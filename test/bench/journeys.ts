// Journeys benchmark: the trigger hook's cost on a sync's facts writes (appointment journey active vs none), and a scheduler pass over due enrollments against bare outbox inserts of the same messages, in the same run.
// Usage: node --import tsx test/bench/journeys.ts [patients] [--postgres]
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../connector/config.js';
import { openApp } from '../../connector/app.js';
import { openJourneys } from '../../connector/journeys/open-journeys.js';
import { createSendingService } from '../../connector/sending/sending-service.js';
import { phi } from '../../fhir/phi.js';
import { patient } from '../connector/campaigns/campaign-world.js';
import { postgresUrl } from '../support/postgres.js';

const patients = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 5_000);
const usePostgres = process.argv.includes('--postgres');
const home = mkdtempSync(join(tmpdir(), 'outreach-bench-journeys-'));
const schema = `b_${randomBytes(6).toString('hex')}`;
const start = new Date('2031-01-05T08:00:00Z');
let clock = start;
const app = await openApp(
  loadConfig({ OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'silent', ...(usePostgres ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}) }),
  { resealInBackground: false },
);
try {
  const sending = await createSendingService(app, { sender: { address: 'care@clinic.test', displayName: 'Clinic' }, dkim: null, now: () => clock });
  const journeys = await openJourneys(app, { clock: () => clock, sending: async () => sending });
  const admin = { name: 'bench', role: 'admin' };
  for (const role of ['marketer', 'clinician'] as const) await app.users.add({ username: role, role, password: 'bench password 123' }, admin);
  const marketer = (await app.users.login('marketer', 'bench password 123')).session;
  const clinician = (await app.users.login('clinician', 'bench password 123')).session;
  // Every patient has one booked appointment 2-30 days out.
  const batchOf = (prefix: string, from: number, n: number) =>
    Array.from({ length: n }, (_, k) => {
      const i = from + k;
      const startAt = new Date(start.getTime() + (2 + (i % 29)) * 86_400_000 + (i % 8) * 3_600_000).toISOString();
      return patient({ patientId: `${prefix}-${i}`, email: phi(`${prefix}-${i}@example.test`), appointments: [{ id: `${prefix}-a${i}`, status: 'booked', start: startAt, types: [] }] });
    });
  const write = async (prefix: string) => {
    const t0 = performance.now();
    for (let i = 0; i < patients; i += 1000) await app.facts.upsertFacts(batchOf(prefix, i, Math.min(1000, patients - i)));
    await journeys.engine.settled();
    return performance.now() - t0;
  };

  // Baseline: the sync's writes with no journey running (the hook finds nothing to do).
  const baselineWriteMs = await write('base');
  const template = await sending.templates.create({ name: 'bench', content: { subject: 'Reminder', preheader: '', html: '', text: 'See you soon.' }, actor: 'marketer' });
  const j = await journeys.service.create(marketer, {
    name: 'bench', purpose: 'appointment-reminder', trigger: { kind: 'appointment-booked', hoursBefore: 24 },
    steps: [{ kind: 'send', name: 'reminder', templateVersionId: template.versionId }],
  });
  const a0 = performance.now();
  await journeys.service.approve(clinician, j.id); // evaluates the patients already stored once
  const activateMs = performance.now() - a0;
  const journeyWriteMs = await write('hook');

  // The scheduler a day at a time over the month: each pass runs only what fell due (before any appointment passed).
  let runMs = 0;
  let queued = 0;
  for (let d = 1; d <= 31; d++) {
    clock = new Date(start.getTime() + d * 86_400_000);
    const t0 = performance.now();
    queued += (await journeys.engine.runDue(1000)).queued;
    runMs += performance.now() - t0;
  }
  if (queued !== 2 * patients) throw new Error(`expected ${2 * patients} queued, got ${queued}`);
  const b0 = performance.now();
  for (let i = 0; i < 2 * patients; i += 1000) {
    await sending.outbox.enqueue(Array.from({ length: Math.min(1000, 2 * patients - i) }, (_, k) => ({ campaignId: 'baseline', templateVersion: template.versionId, patientId: String(i + k + 1), purpose: 'appointment-reminder', deliveryMode: 'tls-or-escrow' as const, idempotencyKey: `baseline:${i + k}` })));
  }
  const enqueueMs = performance.now() - b0;

  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
  process.stdout.write(
    `journeys on ${usePostgres ? 'PostgreSQL' : 'PGlite'}, ${patients} patients per write pass, one appointment each:\n` +
      `sync writes with the appointment journey evaluating: ${(journeyWriteMs / 1000).toFixed(2)} s = ${rate(patients, journeyWriteMs)} patients/s\n` +
      `baseline (same writes, no journey running): ${(baselineWriteMs / 1000).toFixed(2)} s = ${rate(patients, baselineWriteMs)} patients/s · ratio ${(journeyWriteMs / baselineWriteMs).toFixed(2)}x the time\n` +
      `approval (enrolls the ${patients} stored patients once): ${(activateMs / 1000).toFixed(2)} s\n` +
      `scheduler, 31 daily passes over ${2 * patients} enrollments: ${(runMs / 1000).toFixed(2)} s = ${rate(2 * patients, runMs)} steps/s\n` +
      `baseline (bare outbox inserts of ${2 * patients}, batches of 1000): ${(enqueueMs / 1000).toFixed(2)} s = ${rate(2 * patients, enqueueMs)} rows/s · ratio ${(runMs / enqueueMs).toFixed(1)}x the time · load average ${loadavg()[0]!.toFixed(1)}\n`,
  );
  journeys.close();
  await sending.close();
} finally {
  if (usePostgres) await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await app.close();
  rmSync(home, { recursive: true, force: true });
}
