// Marketing, refill and screening journeys on a simulated clock: segment entry, a revocation mid-journey that stops the next step, a channel opt-out that exits treatment journeys, refill and HbA1c due dates from synced FHIR data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerJourneyCommands } from '../../../connector/journeys/cli.js';
import { JourneyEngine, type TickReport } from '../../../connector/journeys/journey-engine.js';
import { startJourneyScheduler } from '../../../connector/journeys/scheduler.js';
import { createTracking } from '../../../connector/delivery/tracking.js';
import { SegmentRepository } from '../../../connector/segments/segment-repository.js';
import { cliRunner } from '../../support/cli-runner.js';
import { appointmentResource, conditionResource, encounterResource, hba1cResource, patientResource, prescriptionResource } from './fhir-resources.js';
import { startJourneyWorld, type JourneyWorld } from './journey-world.js';

const hour = 3_600_000;
const day = 24 * hour;
const admin = { name: 'admin', role: 'admin' };

describe('journey exits and clinical triggers', () => {
  let w: JourneyWorld;
  beforeAll(async () => {
    w = await startJourneyWorld('pglite', new Date('2031-06-02T08:00:00.000Z'));
  }, 120_000);
  afterAll(async () => {
    await w?.close();
  });

  const template = (name: string, text: string) =>
    w.sending.templates.create({ name, content: { subject: 'A message from your practice', preheader: '', html: '', text }, actor: 'marketer' }).then((t) => t.versionId);
  const idOf = async (source: string) => (await w.app.facts.idOf('test-ehr', source))!;
  const queuedOf = async (journeyId: string) => (await w.queued()).filter((m) => m.journey === `journey/${journeyId}`);

  it('enters a marketing journey on segment entry, and a revocation mid-journey stops the next step at once', async () => {
    const { sessions } = w;
    w.put(patientResource('p-hana'), patientResource('p-ivan'), patientResource('p-old'), conditionResource('c-old', 'p-old', '38341003'));
    await w.sync();
    const [hana, ivan, old] = await Promise.all(['p-hana', 'p-ivan', 'p-old'].map(idOf));
    for (const patientId of [hana!, ivan!, old!]) {
      await w.app.consent.grant({ patientId, purpose: 'marketing', channel: 'email', source: 'signed-form', sourceRef: `form-${patientId}`, textVersion: 'auth-v1' }, admin);
    }
    const segment = await new SegmentRepository(w.app.db).save({ name: 'Hypertension', definition: { type: 'condition', code: '38341003' }, actor: 'marketer' });
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'Blood pressure program',
      purpose: 'marketing',
      trigger: { kind: 'segment-entry', segmentId: segment.segmentId },
      steps: [
        { kind: 'send', name: 'intro', templateVersionId: await template('BP program', 'Join our free blood pressure program on Saturdays.') },
        { kind: 'wait', name: 'two-days', hours: 48 },
        { kind: 'branch', name: 'clicked-intro', on: 'clicked', then: 'exit', else: 'follow-up' },
        { kind: 'send', name: 'follow-up', templateVersionId: await template('BP program reminder', 'Seats are still open for Saturday.') },
      ],
    });
    await w.journeys.service.approve(sessions.clinician, journey.id);

    // Two patients newly match the segment; the one who matched before approval does not enter.
    w.put(conditionResource('c-hana', 'p-hana', '38341003'), conditionResource('c-ivan', 'p-ivan', '38341003'), patientResource('p-old'));
    await w.sync();
    const entered = w.now().toISOString();
    await w.journeys.engine.tick();
    expect((await queuedOf(journey.id)).map((m) => [m.patient, m.key.split(':')[4], m.notBefore, m.state])).toEqual([
      [hana, 'intro', entered, 'queued'],
      [ivan, 'intro', entered, 'queued'],
    ]);

    await w.app.consent.revoke({ patientId: hana!, purpose: 'marketing', channel: 'email', source: 'crm' }, admin);
    const counts = await w.journeys.service.counts(sessions.marketer, journey.id);
    expect(counts.enrollments).toEqual({ waiting: 1, done: 0, exited: { revoked: 1 } });

    w.advance(48 * hour);
    await w.journeys.engine.tick();
    expect((await queuedOf(journey.id)).map((m) => [m.patient, m.key.split(':')[4], m.state])).toEqual([
      [hana, 'intro', 'cancelled'],
      [ivan, 'intro', 'queued'],
      [ivan, 'follow-up', 'queued'],
    ]);
    const after = await w.journeys.service.counts(sessions.marketer, journey.id);
    expect(after.steps.map((s) => [s.name, s.outcomes])).toEqual([
      ['intro', { queued: 2 }],
      ['two-days', { waited: 2 }],
      ['clicked-intro', { else: 1 }],
      ['follow-up', { queued: 1 }],
    ]);

    // The segment gets a new definition: the approval no longer covers who enters, so the journey stops until approved again.
    await new SegmentRepository(w.app.db).save({ name: 'Hypertension', definition: { type: 'condition', code: ['38341003', '59621000'] }, actor: 'marketer' });
    w.put(patientResource('p-ivan'));
    await w.sync();
    expect(await w.journeys.service.get(sessions.marketer, journey.id)).toMatchObject({ status: 'draft', approvalHash: null });
    const trail: string[] = [];
    for await (const r of w.app.audit.search({ actionPrefix: 'journey.' })) trail.push(`${r.action}:${r.outcome}`);
    expect(trail.filter((a) => a.startsWith('journey.send'))).toHaveLength(3);
    expect(trail).toContain('journey.void:failure');
  }, 60_000);

  it('reminds of each refill before the supply runs out, and a channel opt-out exits every journey of the patient', async () => {
    const { sessions } = w;
    const t0 = w.now().getTime();
    const authored = new Date(t0 - 20 * day).toISOString().slice(0, 10);
    w.put(patientResource('p-jo'), prescriptionResource('rx-jo', 'p-jo', authored, 30, 1), appointmentResource('a-jo', 'p-jo', new Date(t0 + 60 * day).toISOString()));
    await w.sync();
    const jo = await idOf('p-jo');
    const refill = await w.journeys.service.create(sessions.marketer, {
      name: 'Refill reminder',
      purpose: 'refill-reminder',
      trigger: { kind: 'refill-due', daysBefore: 3 },
      steps: [{ kind: 'send', name: 'refill', templateVersionId: await template('Refill', 'Your prescription is due for a refill. Call us or use the portal.') }],
    });
    const visits = await w.journeys.service.create(sessions.marketer, {
      name: 'Visit reminder',
      purpose: 'appointment-reminder',
      trigger: { kind: 'appointment-booked', hoursBefore: 48 },
      steps: [{ kind: 'send', name: 'visit', templateVersionId: await template('Visit', 'We look forward to your visit.') }],
    });
    // Approved after the prescription was synced: the patients already in the store are evaluated once.
    await w.journeys.service.approve(sessions.clinician, refill.id);
    await w.journeys.service.approve(sessions.clinician, visits.id);

    const authoredAt = Date.parse(`${authored}T00:00:00Z`);
    w.advance(authoredAt + 27 * day - t0); // fill 1 (30 days) runs out at authoredOn + 30 d: reminder 3 days before
    await w.journeys.engine.tick();
    expect((await queuedOf(refill.id)).map((m) => [m.patient, m.notBefore])).toEqual([[jo, new Date(authoredAt + 27 * day).toISOString()]]);

    await w.journeys.service.pause(sessions.marketer, refill.id);
    await w.journeys.service.resume(sessions.marketer, refill.id);
    await w.app.consent.optOut({ patientId: jo!, channel: 'email', source: 'unsubscribe-link' }, { name: 'unsubscribe', role: 'system' });
    w.advance(60 * day);
    await w.journeys.engine.tick();
    expect(await queuedOf(refill.id)).toHaveLength(1);
    expect(await queuedOf(visits.id)).toEqual([]);
    expect((await w.journeys.service.counts(sessions.marketer, refill.id)).enrollments).toEqual({ waiting: 0, done: 1, exited: { 'channel-opted-out': 1 } });
    expect((await w.journeys.service.counts(sessions.marketer, visits.id)).enrollments).toEqual({ waiting: 0, done: 0, exited: { 'channel-opted-out': 1 } });
  }, 60_000);

  it('reminds diabetic patients whose HbA1c is older than 6 months, and a new measurement withdraws the pending reminder', async () => {
    const { sessions } = w;
    const t0 = w.now().getTime();
    const iso = (ms: number) => new Date(ms).toISOString();
    w.put(
      patientResource('p-kim'), conditionResource('c-kim', 'p-kim', '44054006'), hba1cResource('o-kim', 'p-kim', iso(t0 - 210 * day)),
      patientResource('p-lee'), conditionResource('c-lee', 'p-lee', '44054006'), hba1cResource('o-lee', 'p-lee', iso(t0 - 60 * day)),
      patientResource('p-max'), hba1cResource('o-max', 'p-max', iso(t0 - 400 * day)),
    );
    await w.sync();
    const [kim, lee] = await Promise.all(['p-kim', 'p-lee'].map(idOf));
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'HbA1c screening',
      purpose: 'screening-reminder',
      trigger: { kind: 'screening-hba1c' },
      steps: [{ kind: 'send', name: 'a1c', templateVersionId: await template('Lab test due', 'You are due for a routine lab test. Please book a visit.') }],
    });
    await w.journeys.service.approve(sessions.clinician, journey.id);
    await w.journeys.engine.tick();
    expect((await queuedOf(journey.id)).map((m) => [m.patient, m.notBefore])).toEqual([[kim, iso(t0)]]);

    // Lee's is due six months after the last test; a new test a month from now moves it again.
    w.advance(30 * day);
    w.put(hba1cResource('o-lee-2', 'p-lee', iso(t0 + 29 * day)));
    await w.sync();
    w.advance(150 * day);
    await w.journeys.engine.tick();
    expect((await queuedOf(journey.id)).map((m) => m.patient)).toEqual([kim]);
    w.advance(60 * day);
    await w.journeys.engine.tick();
    const queued = await queuedOf(journey.id);
    expect(queued.map((m) => m.patient)).toEqual([kim, lee]);
    const sixMonthsAfter = new Date(t0 + 29 * day);
    sixMonthsAfter.setUTCMonth(sixMonthsAfter.getUTCMonth() + 6);
    expect(queued[1]!.notBefore).toBe(sixMonthsAfter.toISOString());
    expect((await w.journeys.service.counts(sessions.marketer, journey.id)).enrollments).toEqual({ waiting: 0, done: 2, exited: { withdrawn: 1 } });
  }, 60_000);

  it('runs from the command line: create from a definition file, approve as a clinician, pause, resume, status, and a scheduler pass', async () => {
    const io = { readPassword: async () => 'correct horse battery staple', interrupted: () => new Promise<void>(() => undefined) };
    const run = cliRunner([(program, ctx) => registerJourneyCommands(program, ctx, io)], () => w.app);
    await template('Follow-up call', 'We hope your visit went well. Call us with any questions.');
    const file = join(tmpdir(), `journey-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ trigger: { kind: 'encounter-follow-up', encounterTypes: ['390906007'], daysAfter: 2 }, steps: [{ kind: 'send', name: 'call', template: 'Follow-up call' }] }));
    const created = await run(['journey', 'create', 'Diabetes visit follow-up', '--definition', file, '--purpose', 'care-gap-reminder', '--user', 'marketer']);
    expect(created.exitCode).toBe(0);
    expect(created.out).toMatchObject({ status: 'draft', trigger: { kind: 'encounter-follow-up', daysAfter: 2 } });
    const id = String(created.out.id);
    expect((await run(['journey', 'approve', id, '--user', 'marketer'])).text).toMatch(/FORBIDDEN/);
    expect((await run(['journey', 'approve', id, '--user', 'clinician'])).out).toMatchObject({ status: 'active', approvedBy: 'clinician' });
    expect((await run(['journey', 'pause', id, '--user', 'marketer'])).out).toMatchObject({ status: 'paused', cancelled: 0 });
    expect((await run(['journey', 'resume', id, '--user', 'marketer'])).out).toMatchObject({ status: 'active' });
    const status = await run(['journey', 'status', id, '--user', 'clinician'], false);
    expect(status.text).toContain('1. call (send): waiting 0');
    expect(status.text).toContain('· active · v1 · care-gap-reminder · tls-or-escrow · encounter-follow-up');
    const pass = await run(['journey', 'run']);
    expect(pass.exitCode).toBe(0);
    expect(pass.out).toMatchObject({ ran: expect.any(Number), queued: expect.any(Number), exited: expect.any(Number), caughtUp: expect.any(Number) });
    expect((await run(['journey', 'create', 'Bad', '--trigger', '{"kind":"appointment-booked"}', '--steps', '[{"kind":"wait","name":"w","hours":1}]', '--purpose', 'marketing', '--user', 'marketer'])).text).toMatch(/BAD_REQUEST/);
  }, 60_000);

  it('a scheduler that dies after queueing a step leaves it to the next pass after the lease, which queues nothing twice', async () => {
    const { sessions } = w;
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'Same-day reminder',
      purpose: 'appointment-reminder',
      trigger: { kind: 'appointment-booked', hoursBefore: 1 },
      steps: [{ kind: 'send', name: 'soon', templateVersionId: await template('Soon', 'See you in an hour.') }],
    });
    await w.journeys.service.approve(sessions.clinician, journey.id);
    w.put(patientResource('p-zed'), appointmentResource('a-zed', 'p-zed', new Date(w.now().getTime() + 3 * hour).toISOString()));
    await w.sync();
    const outbox = w.sending.outbox;
    const dying = new JourneyEngine({
      db: w.app.db, cipher: w.app.cipher, audit: w.app.audit, facts: w.app.facts, consent: w.app.consent, journeys: w.journeys.service,
      outbox: async () => ({
        enqueue: async (items) => {
          await outbox.enqueue(items);
          throw new Error('process killed after the insert committed');
        },
        cancelQueued: (filter, reason) => outbox.cancelQueued(filter, reason),
      }),
      clock: w.now,
      leaseMs: 10 * 60_000,
    });
    // Zed is also in the 48-hour visit reminder journey of an earlier test: two enrollments are due now.
    const zed = await idOf('p-zed');
    const ofZed = async () => (await w.queued()).filter((m) => m.patient === zed);
    w.advance(2 * hour);
    // The pass inserts both messages in one statement, then dies before recording the steps.
    await expect(dying.runDue()).rejects.toThrow(/process killed/);
    expect(await ofZed()).toHaveLength(2);
    expect(await w.journeys.engine.tick()).toMatchObject({ ran: 0 });
    w.advance(11 * 60_000);
    expect(await w.journeys.engine.tick()).toMatchObject({ ran: 2, queued: 0 });
    const messages = await ofZed();
    expect(messages).toHaveLength(2);
    expect(new Set(messages.map((m) => m.journey)).size).toBe(2);
    expect(await queuedOf(journey.id)).toHaveLength(1);
    const counts = await w.journeys.service.counts(sessions.marketer, journey.id);
    expect(counts.steps[0]!.outcomes).toEqual({ queued: 1 });
    expect(counts.enrollments).toEqual({ waiting: 0, done: 1, exited: {} });
  }, 60_000);

  it('runs passes in the background until stopped, and a poke runs one at once', async () => {
    const reports: TickReport[] = [];
    let seen: (() => void) | undefined;
    const next = () => new Promise<void>((resolve) => (seen = resolve));
    let first = next();
    const scheduler = startJourneyScheduler(w.journeys.engine, { intervalMs: 3_600_000, onTick: (r) => (reports.push(r), seen?.()) });
    await first;
    first = next();
    scheduler.poke();
    await first;
    await scheduler.stop();
    expect(reports).toHaveLength(2);
    expect(reports[1]).toEqual({ caughtUp: expect.any(Number), ran: 0, queued: 0, exited: 0 });
  });

  it('branches on a booked appointment and on a human click of the last message', async () => {
    const { sessions } = w;
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'Post-visit check-in',
      purpose: 'care-gap-reminder',
      trigger: { kind: 'encounter-follow-up', encounterTypes: ['698314001'], daysAfter: 1 },
      steps: [
        { kind: 'send', name: 'invite', templateVersionId: await template('Check-in', 'How are you feeling? Book a check-in at https://clinic.test/book') },
        { kind: 'wait', name: 'a-day', hours: 24 },
        { kind: 'branch', name: 'booked', on: 'booked', then: 'exit', else: 'clicked' },
        { kind: 'branch', name: 'clicked', on: 'clicked', then: 'exit', else: 'nudge' },
        { kind: 'send', name: 'nudge', templateVersionId: await template('Check-in nudge', 'We have check-in times this week.') },
      ],
    });
    await w.journeys.service.approve(sessions.clinician, journey.id);
    const t = w.now().getTime();
    const visit = (p: string) => encounterResource(`e-${p}`, p, '698314001', new Date(t - 2 * hour).toISOString(), new Date(t - hour).toISOString());
    w.put(patientResource('p-books'), visit('p-books'), patientResource('p-clicks'), visit('p-clicks'), patientResource('p-quiet'), visit('p-quiet'));
    await w.sync();
    const [books, clicks, quiet] = await Promise.all(['p-books', 'p-clicks', 'p-quiet'].map(idOf));
    w.advance(23 * hour);
    await w.journeys.engine.tick();
    expect((await queuedOf(journey.id)).map((m) => m.patient).sort()).toEqual([books, clicks, quiet].sort());

    // Clicks is sent the invite and clicks its link (a person, not a scanner); Books books a visit.
    const tracking = createTracking({ db: w.app.db, cipher: w.app.cipher, publicUrl: 'https://outreach.clinic.test', now: w.now });
    const message = (await w.sending.outbox.byIdempotencyKey((await queuedOf(journey.id)).find((m) => m.patient === clicks)!.key))!;
    const html = await tracking.instrument(message, '<p><a href="https://clinic.test/book">Book</a></p>');
    const token = /\/c\/([A-Za-z0-9_-]+)/.exec(html)![1]!;
    expect((await tracking.handleClick(token, { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15', method: 'GET' })).status).toBe(302);
    w.put(appointmentResource('a-books', 'p-books', new Date(t + 5 * day).toISOString()));
    await w.sync();

    w.advance(2 * day);
    await w.journeys.engine.tick();
    const nudged = (await queuedOf(journey.id)).filter((m) => m.key.split(':')[4] === 'nudge').map((m) => m.patient);
    expect(nudged).toEqual([quiet]);
    const counts = await w.journeys.service.counts(sessions.marketer, journey.id);
    expect(counts.steps.map((s) => [s.name, s.outcomes])).toEqual([
      ['invite', { queued: 3 }],
      ['a-day', { waited: 3 }],
      ['booked', { else: 2, then: 1 }],
      ['clicked', { else: 1, then: 1 }],
      ['nudge', { queued: 1 }],
    ]);
  }, 60_000);
});
