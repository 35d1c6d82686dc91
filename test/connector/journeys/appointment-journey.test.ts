// Appointment reminders end to end on a simulated clock: FHIR changes through the loopback server and a real sync, reminders queued N hours before, a cancellation withdrawn, the deceased exited, nothing queued twice across a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journeyStepKey } from '../../../connector/journeys/journey-engine.js';
import { storeKinds } from '../../support/postgres.js';
import { appointmentResource, patientResource } from './fhir-resources.js';
import { startJourneyWorld, type JourneyWorld } from './journey-world.js';

const hour = 3_600_000;
const start = new Date('2031-03-03T08:00:00.000Z');
const at = (iso: string) => new Date(iso).toISOString();

describe.each(storeKinds)('appointment journey (%s)', (kind) => {
  let w: JourneyWorld;
  beforeAll(async () => {
    w = await startJourneyWorld(kind, start);
  }, 120_000);
  afterAll(async () => {
    await w?.close();
  });

  it('queues each reminder 24 hours before its appointment, withdraws a cancelled one, exits the deceased, and queues nothing twice across a restart', async () => {
    const { sessions } = w;
    const idOf = async (source: string) => (await w.app.facts.idOf('test-ehr', source))!;
    // The EHR before the journey exists: one appointment is already booked.
    w.put(patientResource('p-early'), appointmentResource('a-early', 'p-early', '2031-03-04T12:00:00Z'));
    await w.sync();

    const template = await w.sending.templates.create({
      name: 'Appointment reminder',
      content: { subject: 'Your appointment', preheader: '', html: '', text: 'You have an appointment with us soon. Call us to reschedule.' },
      actor: 'marketer',
    });
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'Appointment reminder 24h',
      purpose: 'appointment-reminder',
      trigger: { kind: 'appointment-booked', hoursBefore: 24 },
      steps: [{ kind: 'send', name: 'reminder', templateVersionId: template.versionId }],
    });
    expect(journey.status).toBe('draft');
    await expect(w.journeys.service.approve(sessions.marketer, journey.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const approved = await w.journeys.service.approve(sessions.clinician, journey.id);
    expect(approved).toMatchObject({ status: 'active', approvedBy: 'clinician' });

    // Bookings arrive through the EHR after approval.
    w.put(
      patientResource('p-alex'), appointmentResource('a-alex', 'p-alex', '2031-03-06T10:00:00Z'),
      patientResource('p-blair'), appointmentResource('a-blair', 'p-blair', '2031-03-04T09:00:00Z'),
      patientResource('p-casey'), appointmentResource('a-casey', 'p-casey', '2031-03-07T15:00:00Z'),
      patientResource('p-dana'), appointmentResource('a-dana', 'p-dana', '2031-03-08T09:00:00Z'),
    );
    await w.sync();
    const [early, alex, blair, casey, dana] = await Promise.all(['p-early', 'p-alex', 'p-blair', 'p-casey', 'p-dana'].map(idOf));
    const key = (patient: number, appointment: string) => expect.stringMatching(new RegExp(`^${journeyStepKey(journey, patient, 'reminder', `appointment:${appointment}:`)}[0-9a-f]{16}$`));

    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 0 });
    expect(await w.queued()).toEqual([]);

    w.advance(hour); // 09:00 on the 3rd: Blair's reminder is due (appointment 09:00 on the 4th).
    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 1 });
    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 0, ran: 0 });
    w.advance(3 * hour); // 12:00: the appointment booked before the journey was approved.
    await w.journeys.engine.tick();
    expect(await w.queued()).toEqual([
      { key: key(blair!, 'a-blair'), journey: `journey/${journey.id}`, patient: blair, purpose: 'appointment-reminder', notBefore: at('2031-03-03T09:00:00Z'), state: 'queued' },
      { key: key(early!, 'a-early'), journey: `journey/${journey.id}`, patient: early, purpose: 'appointment-reminder', notBefore: at('2031-03-03T12:00:00Z'), state: 'queued' },
    ]);

    // Casey cancels: the pending reminder is withdrawn.
    w.put(appointmentResource('a-casey', 'p-casey', '2031-03-07T15:00:00Z', 'cancelled'));
    await w.sync();

    // A restart: the same store, a new process. The same EHR data synced again enrolls nobody twice.
    await w.restart();
    await w.app.db.query(`DELETE FROM sync_state`);
    await w.sync();
    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 0 });
    expect((await w.queued()).length).toBe(2);

    w.advance(46 * hour); // 10:00 on the 5th: Alex's reminder.
    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 1 });

    // Dana dies before her reminder is due.
    w.put(patientResource('p-dana', { deceasedDateTime: '2031-03-05T18:00:00Z' }));
    w.advance(10 * hour);
    await w.sync();

    w.advance(4 * 24 * hour); // past every appointment
    expect(await w.journeys.engine.tick()).toMatchObject({ queued: 0 });
    const queued = await w.queued();
    expect(queued.map((m) => [m.patient, m.notBefore])).toEqual([
      [blair, at('2031-03-03T09:00:00Z')],
      [early, at('2031-03-03T12:00:00Z')],
      [alex, at('2031-03-05T10:00:00Z')],
    ]);
    expect(queued.map((m) => m.patient)).not.toContain(casey);
    expect(queued.map((m) => m.patient)).not.toContain(dana);
    expect(new Set(queued.map((m) => m.key)).size).toBe(queued.length);

    const counts = await w.journeys.service.counts(sessions.marketer, journey.id);
    expect(counts.steps).toEqual([{ index: 0, name: 'reminder', kind: 'send', waiting: 0, outcomes: { queued: 3 } }]);
    expect(counts.enrollments).toEqual({ waiting: 0, done: 3, exited: { withdrawn: 1, deceased: 1 } });

    // The journeys' rows hold ids, step names and due times (the scheduler's index, as the outbox's), never a name or an appointment time.
    const dump = JSON.stringify(await w.app.db.query('SELECT * FROM journey_enrollments'), (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    for (const appointment of ['2031-03-04T12:00', '2031-03-06T10:00', '2031-03-04T09:00', '2031-03-07T15:00', '2031-03-08T09:00']) expect(dump).not.toContain(appointment);
    expect(dump).not.toMatch(/Given|Testfamily|valid\.test/);
  }, 120_000);

  it('moves a reminder when the appointment is rescheduled, and an edit voids the approval and stops the journey', async () => {
    const { sessions } = w;
    const template = await w.sending.templates.create({
      name: 'Visit reminder',
      content: { subject: 'Your visit', preheader: '', html: '', text: 'We look forward to seeing you. Call us to reschedule.' },
      actor: 'marketer',
    });
    const journey = await w.journeys.service.create(sessions.marketer, {
      name: 'Visit reminder 2h',
      purpose: 'appointment-reminder',
      trigger: { kind: 'appointment-booked', hoursBefore: 2 },
      steps: [{ kind: 'send', name: 'reminder', templateVersionId: template.versionId }],
    });
    await w.journeys.service.approve(sessions.clinician, journey.id);
    const base = w.now().getTime();
    const first = new Date(base + 30 * hour).toISOString();
    const moved = new Date(base + 50 * hour).toISOString();
    w.put(patientResource('p-eve'), appointmentResource('a-eve', 'p-eve', first));
    await w.sync();
    w.put(appointmentResource('a-eve', 'p-eve', moved));
    await w.sync();
    w.advance(28 * hour);
    await w.journeys.engine.tick();
    const mine = async () => (await w.queued()).filter((m) => m.journey === `journey/${journey.id}`);
    expect(await mine()).toEqual([]);
    w.advance(20 * hour);
    await w.journeys.engine.tick();
    expect((await mine()).map((m) => m.notBefore)).toEqual([new Date(base + 48 * hour).toISOString()]);

    const edited = await w.journeys.service.update(sessions.marketer, journey.id, { trigger: { kind: 'appointment-booked', hoursBefore: 3 } });
    expect(edited).toMatchObject({ status: 'draft', approvalHash: null, revision: 2 });
    await expect(w.journeys.service.resume(sessions.marketer, journey.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    w.put(appointmentResource('a-eve2', 'p-eve', new Date(w.now().getTime() + 10 * hour).toISOString()));
    await w.sync();
    w.advance(9 * hour);
    await w.journeys.engine.tick();
    expect((await mine()).length).toBe(1);
  }, 60_000);
});
