// End to end: facts in the store → segment → template → campaign → submit → approve → schedule → the dispatcher delivers over verified TLS, sends an escrow notice for a domain without TLS, and a revocation after approval stops that message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { phi } from '../../../fhir/phi.js';
import { storeKinds } from '../../support/postgres.js';
import { startCampaignWorld, type CampaignWorld } from './campaign-world.js';

const CANARY = 'Zebulon';

describe.each(storeKinds)('campaign send on %s', (kind) => {
  let w: CampaignWorld;
  beforeAll(async () => {
    w = await startCampaignWorld(kind);
  }, 60_000);
  afterAll(async () => w?.close());

  it('delivers over verified TLS, escrows for a no-TLS domain, excludes by reason, and honours a revocation made after approval', async () => {
    const { app, sending, sessions } = w;
    const ids = await w.addPatients([
      { patientId: 'tls-1', state: 'E1', given: phi(`${CANARY} Alpha`), email: phi('alpha@valid.test') },
      { patientId: 'tls-2', state: 'E1', given: phi('Bravo'), email: phi('bravo@valid.test') },
      { patientId: 'plain-1', state: 'E1', given: phi('Charlie'), email: phi('charlie@no-starttls.test'), birthDate: phi('1980-02-03') },
      { patientId: 'revoked', state: 'E1', given: phi('Delta'), email: phi('delta@valid.test') },
      { patientId: 'no-auth', state: 'E1', given: phi('Echo'), email: phi('echo@valid.test') },
      { patientId: 'no-email', state: 'E1', given: phi('Foxtrot') },
      { patientId: 'deceased', state: 'E1', given: phi('Golf'), email: phi('golf@valid.test'), deceased: true },
      { patientId: 'other-state', state: 'E2', given: phi('Hotel'), email: phi('hotel@valid.test') },
    ]);
    const [tls1, tls2, plain1, revoked, , noEmail, deceased] = ids;
    for (const id of [tls1, tls2, plain1, revoked, noEmail, deceased]) {
      await app.consent.grant({ patientId: id!, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-1', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
    }
    await (await app.segmentIndex()).settled();
    const segment = await sending.segments.save({ name: 'E1 patients', definition: { type: 'state', value: 'E1' }, actor: 'marketer' });
    const template = await sending.templates.create({
      name: 'Spring check-in',
      content: { subject: 'Time for your check-in', preheader: '', html: '<p>Hello [first name], book with [pcp name].</p>', text: 'Hello [first name], book with [pcp name]. [unsubscribe link]', fromName: 'pcp' },
      actor: 'marketer',
    });

    const campaign = await sending.campaigns.create(sessions.marketer, {
      name: 'Spring check-in', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-or-escrow',
    });
    expect(campaign.status).toBe('draft');
    expect((await sending.campaigns.submit(sessions.marketer, campaign.id)).status).toBe('pending-approval');
    const approved = await sending.campaigns.approve(sessions.clinician, campaign.id, 'Fine to send');
    expect(approved).toMatchObject({ status: 'approved', audienceCount: 7, approvedBy: 'clinician' });
    expect(approved.approvalHash).toMatch(/^[0-9a-f]{64}$/);

    // Revoked between approval and dispatch: the send run excludes it (and the gate at dispatch would too).
    await app.consent.revoke({ patientId: revoked!, purpose: 'marketing', channel: 'email', source: 'admin' }, { name: 'admin', role: 'admin' });
    await sending.campaigns.schedule(sessions.marketer, campaign.id);
    const s1 = await sending.drainOnce();
    expect(s1.campaignsQueued).toBe(1);
    const after = await sending.campaigns.get(sessions.marketer, campaign.id);
    expect(after.sendReport).toMatchObject({ members: 7, queued: 3, excluded: { deceased: 1, 'no-email': 1, unsubscribed: 1, 'no-authorization': 1, suppressed: 0 } });
    expect(after.status).toBe('sent');
    expect(s1).toMatchObject({ delivered: 2, notices: 1 });

    const valid = w.delivery.sinks.valid.messages;
    const plain = w.delivery.sinks['no-starttls'].messages;
    expect(valid.map((m) => m.to[0]).sort()).toEqual(['alpha@valid.test', 'bravo@valid.test']);
    expect(valid.every((m) => m.secure)).toBe(true);
    const alpha = valid.find((m) => m.to[0] === 'alpha@valid.test')!.raw.toString('utf8');
    expect(alpha).toContain(CANARY);
    expect(alpha).toMatch(/^From: "Dr\. Imaginary Osei" <care@clinic\.test>/m);
    expect(alpha).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256/m);
    expect(alpha).toMatch(/^List-Unsubscribe:\s*<https:\/\/outreach\.clinic\.test\/u\//m);
    // The no-TLS domain got only the PHI-free notice, in plaintext, with the portal link.
    expect(plain).toHaveLength(1);
    const notice = plain[0]!.raw.toString('utf8');
    expect(plain[0]!.secure).toBe(false);
    expect(notice).toMatch(/https:\/\/outreach\.clinic\.test\/m\/[A-Za-z0-9_-]{43}/);
    expect(notice).not.toContain('Charlie');
    expect(notice).not.toContain('Imaginary');

    const stats = await sending.campaigns.stats(sessions.marketer, campaign.id);
    expect(stats.states).toEqual({ delivered: 2, notice_sent: 1 });
    // The escrowed message opens in the portal with a code sent to the same address and the date of birth.
    const token = /\/m\/([A-Za-z0-9_-]{43})/.exec(notice)![1]!;
    await sending.escrow!.sendCode(token);
    await w.delivery.sinks['no-starttls'].waitFor(2);
    const code = /code is (\d{6})/.exec(plain[1]!.raw.toString('utf8'))![1]!;
    const { session } = await sending.escrow!.verify(token, code, '1980-02-03');
    expect(String((await sending.escrow!.read(token, session)).text)).toContain('Hello Charlie');

    // A second run queues nobody twice.
    await sending.campaigns.schedule(sessions.marketer, campaign.id).catch((e) => expect(e.code).toBe('CAMPAIGN_STATE'));
    const audit = [];
    for await (const r of app.audit.search({ actionPrefix: 'campaign.' })) audit.push(r.action);
    expect(audit).toEqual(expect.arrayContaining(['campaign.create', 'campaign.submit', 'campaign.approve', 'campaign.schedule', 'campaign.send', 'campaign.complete']));
    expect((await app.audit.verify()).ok).toBe(true);
  }, 60_000);

  it('stops a queued message when consent is revoked after the send run and before dispatch', async () => {
    const { app, sending, sessions } = w;
    const [a, b] = await w.addPatients([
      { patientId: 'late-a', state: 'E3', email: phi('late-a@valid.test') },
      { patientId: 'late-b', state: 'E3', email: phi('late-b@valid.test') },
    ]);
    for (const id of [a, b]) await app.consent.grant({ patientId: id!, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-2', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
    const segment = await sending.segments.save({ name: 'E3 patients', definition: { type: 'state', value: 'E3' }, actor: 'marketer' });
    const template = await sending.templates.create({ name: 'Late news', content: { subject: 'News from the practice', preheader: '', html: '', text: 'Hello [first name].' }, actor: 'marketer' });
    const c = await sending.campaigns.create(sessions.marketer, { name: 'Late news', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
    await sending.campaigns.submit(sessions.marketer, c.id);
    await sending.campaigns.approve(sessions.clinician, c.id);
    await sending.campaigns.schedule(sessions.marketer, c.id);
    await sending.campaigns.runDue();
    expect(await sending.outbox.campaignStates(`campaign/${c.id}`)).toEqual({ queued: 2 });
    const before = w.delivery.sinks.valid.messages.length;
    await app.consent.revoke({ patientId: b!, purpose: 'marketing', channel: 'email', source: 'unsubscribe-link' }, { name: 'unsubscribe', role: 'system' });
    await sending.drainOnce();
    expect(await sending.outbox.campaignStates(`campaign/${c.id}`)).toEqual({ delivered: 1, cancelled: 1 });
    expect(w.delivery.sinks.valid.messages.slice(before).map((m) => m.to[0])).toEqual(['late-a@valid.test']);
  }, 60_000);
});
