// New work names only live content: the campaign CLI and journeys (service and CLI) refuse an archived template or segment with ARCHIVED, as the HTTP API does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCampaignCommands } from '../../../connector/campaigns/cli.js';
import { TemplateStore } from '../../../connector/compose/template-store.js';
import { registerJourneyCommands } from '../../../connector/journeys/cli.js';
import { openJourneys, type Journeys } from '../../../connector/journeys/open-journeys.js';
import { SegmentRepository } from '../../../connector/segments/segment-repository.js';
import { phi } from '../../../fhir/phi.js';
import { cliRunner } from '../../support/cli-runner.js';
import { storeKinds } from '../../support/postgres.js';
import { password, startCampaignWorld, type CampaignWorld } from './campaign-world.js';

describe.each(storeKinds)('archived templates and segments on %s', (kind) => {
  let w: CampaignWorld;
  let journeys: Journeys;
  const io = { readPassword: async () => password, interrupted: () => new Promise<void>(() => undefined) };
  const runCampaign = (args: string[]) => cliRunner([(p, ctx) => registerCampaignCommands(p, ctx, io)], () => w.app)(args);
  const runJourney = (args: string[]) => cliRunner([(p, ctx) => registerJourneyCommands(p, ctx, io)], () => w.app)(args);
  const template = (name: string) =>
    w.sending.templates.create({ name, content: { subject: 'A message from your practice', preheader: '', html: '', text: 'See you soon, [first name].' }, actor: 'marketer' });
  const segment = (name: string) => w.sending.segments.save({ name, definition: { type: 'state', value: 'AR' }, actor: 'marketer' });
  const archiveTemplate = (name: string) => new TemplateStore(w.app.db).archive(name, 'marketer');
  const archiveSegment = (name: string) => new SegmentRepository(w.app.db).archive(name, 'marketer');

  beforeAll(async () => {
    w = await startCampaignWorld(kind);
    journeys = await openJourneys(w.app, { listen: false });
    await w.addPatients([{ patientId: 'archive-1', state: 'AR', email: phi('archive-1@valid.test') }]);
  }, 180_000);
  afterAll(async () => {
    journeys?.close();
    await w?.close();
  });

  it('refuses from the command line a campaign on an archived template or segment, and the submission of a draft whose segment was archived since', async () => {
    await template('Kept template');
    await template('Gone template');
    await segment('Soon gone segment');
    const draft = await runCampaign(['campaign', 'create', 'Drafted before', '--template', 'Kept template', '--segment', 'Soon gone segment', '--purpose', 'appointment-reminder', '--user', 'marketer']);
    expect(draft.out).toMatchObject({ status: 'draft' });

    await archiveTemplate('Gone template');
    const onTemplate = await runCampaign(['campaign', 'create', 'Too late', '--template', 'Gone template', '--segment', 'Soon gone segment', '--purpose', 'appointment-reminder', '--user', 'marketer']);
    expect(onTemplate.exitCode).toBe(1);
    expect(onTemplate.out.error.code).toBe('ARCHIVED');
    expect(onTemplate.out.error.message).toMatch(/template is archived/);

    await archiveSegment('Soon gone segment');
    const submitted = await runCampaign(['campaign', 'submit', String(draft.out.id), '--user', 'marketer']);
    expect(submitted.exitCode).toBe(1);
    expect(submitted.out.error.code).toBe('ARCHIVED');
    expect(submitted.out.error.message).toMatch(/segment is archived/);
    expect((await w.sending.campaigns.get(w.sessions.marketer, String(draft.out.id))).status).toBe('draft');
    const onSegment = await runCampaign(['campaign', 'create', 'Too late', '--template', 'Kept template', '--segment', 'Soon gone segment', '--purpose', 'appointment-reminder', '--user', 'marketer']);
    expect(onSegment.out.error).toMatchObject({ code: 'ARCHIVED', message: expect.stringMatching(/segment is archived/) });
    // The service says which field, for the API and any other caller.
    await expect(
      w.sending.campaigns.create(w.sessions.marketer, { name: 'Too late', template: { name: 'Kept template' }, audience: { kind: 'segment', name: 'Soon gone segment' }, purpose: 'appointment-reminder' }),
    ).rejects.toMatchObject({ code: 'ARCHIVED', details: { field: 'audience.segmentId' } });
  });

  it('refuses a journey on an archived template or segment through the service and the command line, and the approval of a draft whose template was archived since', async () => {
    const live = await template('Journey kept template');
    const gone = await template('Journey gone template');
    const seg = await segment('Journey gone segment');
    const step = (templateVersionId: number) => [{ kind: 'send', name: 'hello', templateVersionId }];
    const draft = await journeys.service.create(w.sessions.marketer, { name: 'Drafted before', purpose: 'appointment-reminder', trigger: { kind: 'appointment-booked', hoursBefore: 24 }, steps: step(gone.versionId) });
    expect(draft.status).toBe('draft');

    await archiveTemplate('Journey gone template');
    await expect(
      journeys.service.create(w.sessions.marketer, { name: 'Too late', purpose: 'appointment-reminder', trigger: { kind: 'appointment-booked', hoursBefore: 24 }, steps: step(gone.versionId) }),
    ).rejects.toMatchObject({ code: 'ARCHIVED', details: { field: 'steps.0.templateVersionId' }, message: expect.stringMatching(/template is archived/) });
    await expect(journeys.service.approve(w.sessions.clinician, draft.id)).rejects.toMatchObject({ code: 'ARCHIVED', details: { field: 'steps.0.templateVersionId' } });
    expect((await journeys.service.get(w.sessions.marketer, draft.id)).status).toBe('draft');
    const byCli = await runJourney(['journey', 'create', 'Too late', '--trigger', '{"kind":"appointment-booked"}', '--steps', '[{"kind":"send","name":"hello","template":"Journey gone template"}]', '--purpose', 'appointment-reminder', '--user', 'marketer']);
    expect(byCli.exitCode).toBe(1);
    expect(byCli.out.error).toMatchObject({ code: 'ARCHIVED', message: expect.stringMatching(/template is archived/) });

    // Choosing a live template makes the draft approvable again.
    const edited = await journeys.service.update(w.sessions.marketer, draft.id, { steps: step(live.versionId) });
    expect((await journeys.service.approve(w.sessions.clinician, edited.id)).status).toBe('active');

    const entry = { kind: 'segment-entry', segmentId: seg.segmentId };
    const onSegment = await journeys.service.create(w.sessions.marketer, { name: 'On a segment', purpose: 'marketing', trigger: entry, steps: step(live.versionId) });
    await archiveSegment('Journey gone segment');
    await expect(
      journeys.service.create(w.sessions.marketer, { name: 'Too late', purpose: 'marketing', trigger: entry, steps: step(live.versionId) }),
    ).rejects.toMatchObject({ code: 'ARCHIVED', details: { field: 'trigger.segmentId' }, message: expect.stringMatching(/segment is archived/) });
    await expect(journeys.service.approve(w.sessions.clinician, onSegment.id)).rejects.toMatchObject({ code: 'ARCHIVED', details: { field: 'trigger.segmentId' } });
    const segmentByCli = await runJourney(['journey', 'create', 'Too late', '--trigger', JSON.stringify(entry), '--steps', '[{"kind":"send","name":"hello","template":"Journey kept template"}]', '--purpose', 'marketing', '--user', 'marketer']);
    expect(segmentByCli.out.error).toMatchObject({ code: 'ARCHIVED', message: expect.stringMatching(/segment is archived/) });
  });
});
