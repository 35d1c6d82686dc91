// Campaigns on a real store and real sinks: end to end (facts → segment → template → campaign → approve → send over verified TLS, escrow for no TLS, revocation after approval), the approval rules (edits void, withdrawal cancels, roles), and exclusion counts against a brute force.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Campaign } from '../../../connector/campaigns/campaign-service.js';
import { registerCampaignCommands } from '../../../connector/campaigns/cli.js';
import { cliRunner } from '../../support/cli-runner.js';
import { phi } from '../../../fhir/phi.js';
import { storeKinds } from '../../support/postgres.js';
import { password, startCampaignWorld, type CampaignWorld } from './campaign-world.js';

const CANARY = 'Zebulon';

describe.each(storeKinds)('campaigns on %s', (kind) => {
  let w: CampaignWorld;
  beforeAll(async () => {
    w = await startCampaignWorld(kind);
  }, 180_000);
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

    // The HTML part carries an opaque open pixel; a person's open counts, a mail proxy's fetch does not.
    const pixel = /\/t\/o\/([A-Za-z0-9_-]{22})/.exec(alpha.replace(/=\r\n/g, ''))![1]!;
    await sending.tracking!.handleOpen(pixel, { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', ip: '198.51.100.7' });
    await sending.tracking!.handleOpen(pixel, { userAgent: 'Mozilla/5.0 (via ggpht.com GoogleImageProxy)' });
    const stats = await sending.campaigns.stats(sessions.marketer, campaign.id);
    expect(stats.states).toEqual({ delivered: 2, notice_sent: 1 });
    expect(stats.opened).toBe(1);
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
  }, 180_000);

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
  }, 180_000);

  /** A template, a segment of patients in `state` and a draft campaign over them, submitted. */
  const submitted = async (tag: string, state: string, patients: number, options: { grant?: boolean; text?: string } = {}): Promise<{ campaign: Campaign; ids: number[] }> => {
    const { app, sending, sessions } = w;
    const ids = await w.addPatients(Array.from({ length: patients }, (_, i) => ({ patientId: `${tag}-${i}`, state, email: phi(`${tag}-${i}@valid.test`) })));
    if (options.grant ?? true) {
      for (const id of ids) await app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: `form-${tag}`, textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
      await (await app.segmentIndex()).settled();
    }
    const segment = await sending.segments.save({ name: `${tag} segment`, definition: { type: 'state', value: state }, actor: 'marketer' });
    const template = await sending.templates.create({ name: `${tag} template`, content: { subject: 'A note from the practice', preheader: '', html: '', text: options.text ?? 'Hello [first name].' }, actor: 'marketer' });
    const campaign = await sending.campaigns.create(sessions.marketer, { name: `${tag} campaign`, template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
    return { campaign: await sending.campaigns.submit(sessions.marketer, campaign.id), ids };
  };

  it('voids the approval on any edit: back to draft, queued messages cancelled, scheduling refused', async () => {
    const { sending, sessions } = w;
    const { campaign } = await submitted('edit', 'V1', 3);
    const approved = await sending.campaigns.approve(sessions.clinician, campaign.id);
    await sending.campaigns.schedule(sessions.marketer, campaign.id, new Date(Date.now() - 1000));
    await sending.campaigns.runDue();
    expect(await sending.outbox.campaignStates(`campaign/${campaign.id}`)).toEqual({ queued: 3 });
    const edited = await sending.campaigns.update(sessions.marketer, campaign.id, { deliveryMode: 'escrow' });
    expect(edited).toMatchObject({ status: 'draft', approvalHash: null, revision: approved.revision + 1 });
    expect(await sending.outbox.campaignStates(`campaign/${campaign.id}`)).toEqual({ cancelled: 3 });
    await expect(sending.campaigns.schedule(sessions.marketer, campaign.id)).rejects.toMatchObject({ code: 'CAMPAIGN_STATE' });
    const decisions = (await sending.campaigns.decisions(sessions.marketer, campaign.id)).map((d) => [d.decision, d.approvalHash === approved.approvalHash]);
    expect(decisions).toEqual([['submitted', false], ['approved', true], ['voided', true]]);
    // Re-approval binds the new content: a different hash, and the campaign can queue again.
    await sending.campaigns.submit(sessions.marketer, campaign.id);
    const again = await sending.campaigns.approve(sessions.clinician, campaign.id);
    expect(again.approvalHash).not.toBe(approved.approvalHash);
    await sending.campaigns.schedule(sessions.marketer, campaign.id, new Date(Date.now() - 1000));
    const [run] = await sending.campaigns.runDue();
    expect(run!.report).toMatchObject({ members: 3, queued: 3 });
    await sending.campaigns.cancel(sessions.admin, campaign.id);
  });

  it('cancels every queued message when the clinician withdraws the approval, and stops the ones already claimed at dispatch', async () => {
    const { sending, sessions } = w;
    const { campaign } = await submitted('withdraw', 'V2', 4);
    await sending.campaigns.approve(sessions.clinician, campaign.id);
    await sending.campaigns.schedule(sessions.marketer, campaign.id, new Date(Date.now() - 1000));
    await sending.campaigns.runDue();
    // Two messages are in a worker's hands (claimed, lease run out) when the approval is withdrawn.
    expect(await sending.outbox.claim('another-worker', 2, -1000)).toHaveLength(2);
    const before = w.delivery.sinks.valid.messages.length;
    const withdrawn = await sending.campaigns.withdraw(sessions.clinician, campaign.id, 'Wrong audience');
    expect(withdrawn).toMatchObject({ status: 'draft', approvalHash: null, cancelled: 2 });
    expect(await sending.outbox.campaignStates(`campaign/${campaign.id}`)).toEqual({ cancelled: 2, sending: 2 });
    // The claimed two are stopped at dispatch: the approval is checked again before anything is rendered.
    await sending.drainOnce();
    expect(await sending.outbox.campaignStates(`campaign/${campaign.id}`)).toEqual({ cancelled: 2, failed: 2 });
    expect(w.delivery.sinks.valid.messages.length).toBe(before);
    const decisions = await sending.campaigns.decisions(sessions.clinician, campaign.id);
    expect(decisions.at(-1)).toMatchObject({ decision: 'withdrawn', by: 'clinician', comment: 'Wrong audience' });
    // The comment is sealed in the store.
    const raw = JSON.stringify(await w.app.db.query('SELECT comment_sealed FROM campaign_decisions'), (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    expect(raw).not.toContain('Wrong audience');
  });

  it('resumes a send run that died midway without queuing anyone twice, and does not call it sent before', async () => {
    const { app, sending, sessions } = w;
    const { campaign, ids } = await submitted('crash', 'V5', 3);
    const approved = await sending.campaigns.approve(sessions.clinician, campaign.id);
    await sending.campaigns.schedule(sessions.marketer, campaign.id, new Date(Date.now() - 1000));
    // What a process killed inside the run leaves: the campaign claimed an hour ago, one member queued, no report.
    await app.db.query(`UPDATE campaigns SET status = 'sending', updated_at = $2 WHERE id = $1`, [campaign.id, new Date(Date.now() - 3_600_000)]);
    await sending.outbox.enqueue([{ campaignId: `campaign/${campaign.id}`, templateVersion: approved.templateVersionId, patientId: String(ids[0]), purpose: 'marketing', deliveryMode: 'tls-required', idempotencyKey: `campaign/${campaign.id}/a${approved.approvalSeq}/${ids[0]}` }]);
    await sending.dispatcher.drain();
    expect(await sending.campaigns.completeFinished()).not.toContain(campaign.id);
    const [run] = (await sending.campaigns.runDue()).filter((r) => r.id === campaign.id);
    expect(run!.report).toMatchObject({ members: 3, queued: 2, excluded: { 'already-sent': 1 } });
    await sending.drainOnce();
    expect(await sending.outbox.campaignStates(`campaign/${campaign.id}`)).toEqual({ delivered: 3 });
    expect((await sending.campaigns.get(sessions.marketer, campaign.id)).status).toBe('sent');
  });

  it('holds the role rules: a marketer cannot approve, a clinician cannot create or edit, an admin may only cancel', async () => {
    const { sending, sessions } = w;
    const { campaign } = await submitted('roles', 'V3', 1);
    await expect(sending.campaigns.approve(sessions.marketer, campaign.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.reject(sessions.marketer, campaign.id, 'no')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.update(sessions.clinician, campaign.id, { deliveryMode: 'escrow' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.create(sessions.clinician, { name: 'x', template: { versionId: campaign.templateVersionId }, audience: { kind: 'contact', patientId: 1 }, purpose: 'marketing' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.schedule(sessions.clinician, campaign.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.approve(sessions.admin, campaign.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(sending.campaigns.approve(undefined, campaign.id)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(sending.campaigns.reject(sessions.clinician, campaign.id, '  ')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    const rejected = await sending.campaigns.reject(sessions.clinician, campaign.id, 'Needs the practice phone number');
    expect(rejected.status).toBe('rejected');
    await expect(sending.campaigns.schedule(sessions.marketer, campaign.id)).rejects.toMatchObject({ code: 'CAMPAIGN_STATE' });
    expect((await sending.campaigns.cancel(sessions.admin, campaign.id)).status).toBe('cancelled');
    await expect(sending.campaigns.submit(sessions.marketer, campaign.id)).rejects.toMatchObject({ code: 'CAMPAIGN_STATE' });
  });

  it('refuses a delivery mode the template does not allow, and a clinical template outside tls-required or escrow', async () => {
    const { sending, sessions } = w;
    const [id] = await w.addPatients([{ patientId: 'clinical-1', state: 'V4', email: phi('clinical-1@valid.test') }]);
    const template = await sending.templates.create({ name: 'A1C follow-up', content: { subject: 'Your follow-up', preheader: '', html: '', text: 'Your last A1C was [last a1c].' }, actor: 'marketer' });
    await expect(
      sending.campaigns.create(sessions.marketer, { name: 'A1C', template: { versionId: template.versionId }, audience: { kind: 'contact', patientId: id! }, purpose: 'screening-reminder', deliveryMode: 'tls-or-escrow' }),
    ).rejects.toMatchObject({ code: 'DELIVERY_MODE_NOT_ALLOWED' });
    const ok = await sending.campaigns.create(sessions.marketer, { name: 'A1C', template: { versionId: template.versionId }, audience: { kind: 'contact', patientId: id! }, purpose: 'screening-reminder', deliveryMode: 'tls-required' });
    expect(ok.audience).toEqual({ kind: 'contact', patientId: id, crmId: null });
  });

  it('counts exclusions exactly as a brute-force evaluation of generated facts, consent states and suppressions', async () => {
    const { app, sending, sessions } = w;
    // A seeded generator: the same population every run, every combination well represented.
    let seed = 20260423;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const n = 120;
    type Gen = { email: boolean; deceased: boolean; consent: 'granted' | 'none' | 'revoked' | 'expired' | 'opted-out'; bounced: boolean; complained: boolean };
    const gen: Gen[] = Array.from({ length: n }, () => ({
      email: rand() > 0.15,
      deceased: rand() < 0.1,
      consent: (['granted', 'granted', 'none', 'revoked', 'expired', 'opted-out'] as const)[Math.floor(rand() * 6)]!,
      bounced: rand() < 0.15,
      complained: rand() < 0.1,
    }));
    const ids = await w.addPatients(gen.map((g, i) => ({ patientId: `gen-${i}`, state: 'BF', deceased: g.deceased, ...(g.email ? { email: phi(`gen-${i}@valid.test`) } : {}) })));
    const admin = { name: 'admin', role: 'admin' };
    const past = new Date(Date.now() - 86_400_000 * 30);
    for (const [i, g] of gen.entries()) {
      const base = { patientId: ids[i]!, channel: 'email' as const, source: 'admin' as const };
      if (g.consent !== 'none') await app.consent.grant({ ...base, purpose: 'marketing', sourceRef: 'bf', textVersion: 'auth-v1', grantedAt: past, ...(g.consent === 'expired' ? { expiresAt: new Date(Date.now() - 86_400_000) } : {}) }, admin);
      if (g.consent === 'revoked') await app.consent.revoke({ ...base, purpose: 'marketing' }, admin);
      if (g.consent === 'opted-out') await app.consent.optOut(base, admin);
      if (g.bounced && g.email) await app.db.query(`INSERT INTO delivery_suppressions (address_index, patient_id, reason, created_at) VALUES ($1, $2, 'hard-bounce', now())`, [app.cipher.blindIndex('email', `gen-${i}@valid.test`), null]);
      if (g.complained) await app.db.query(`INSERT INTO delivery_suppressions (address_index, patient_id, reason, created_at) VALUES (NULL, $1, 'complaint', now())`, [String(ids[i])]);
    }
    await (await app.segmentIndex()).settled();
    // The brute force: the rules as the issue states them, in their order, over the generated truth.
    const expected = { 'unknown-patient': 0, deceased: 0, 'no-email': 0, unsubscribed: 0, 'no-authorization': 0, suppressed: 0, 'already-sent': 0 };
    let eligible = 0;
    for (const g of gen) {
      if (g.deceased) expected.deceased++;
      else if (!g.email) expected['no-email']++;
      else if (g.consent === 'revoked' || g.consent === 'opted-out') expected.unsubscribed++;
      else if (g.consent === 'none' || g.consent === 'expired') expected['no-authorization']++;
      else if (g.bounced || g.complained) expected.suppressed++;
      else eligible++;
    }
    const segment = await sending.segments.save({ name: 'BF segment', definition: { type: 'state', value: 'BF' }, actor: 'marketer' });
    const template = await sending.templates.create({ name: 'BF template', content: { subject: 'News', preheader: '', html: '', text: 'Hello [first name].' }, actor: 'marketer' });
    const forecast = await sending.campaigns.forecast(sessions.marketer, { template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
    expect(forecast).toMatchObject({ recipients: eligible, tls: eligible, held: 0, escrow: 0, excluded: expected, domains: eligible ? 1 : 0 });
    const c = await sending.campaigns.create(sessions.marketer, { name: 'BF', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
    await sending.campaigns.submit(sessions.marketer, c.id);
    await sending.campaigns.approve(sessions.clinician, c.id);
    await sending.campaigns.schedule(sessions.marketer, c.id, new Date(Date.now() - 1000));
    const [run] = await sending.campaigns.runDue();
    expect(run!.report).toMatchObject({ members: n, queued: eligible, excluded: expected });
    // The report holds counts only: no address, no name.
    expect(JSON.stringify(run!.report)).not.toMatch(/@|Testgiven/);
    await sending.campaigns.cancel(sessions.marketer, c.id);
  }, 180_000);

  it('runs the lifecycle from the command line as signed-in users, and a wrong password changes nothing', async () => {
    const { sending } = w;
    await w.addPatients([{ patientId: 'cli-1', state: 'C1', email: phi('cli-1@valid.test') }]);
    await sending.segments.save({ name: 'CLI segment', definition: { type: 'state', value: 'C1' }, actor: 'marketer' });
    await sending.templates.create({ name: 'CLI template', content: { subject: 'Reminder', preheader: '', html: '', text: 'See you soon, [first name].' }, actor: 'marketer' });
    let typed = password;
    const run = cliRunner([(p, ctx) => registerCampaignCommands(p, ctx, { readPassword: async () => typed, interrupted: () => new Promise(() => undefined) })], () => w.app);
    const created = await run(['campaign', 'create', 'CLI reminder', '--template', 'CLI template', '--segment', 'CLI segment', '--purpose', 'appointment-reminder', '--mode', 'tls-required', '--user', 'marketer']);
    expect(created.exitCode).toBe(0);
    expect(created.out).toMatchObject({ status: 'draft', purpose: 'appointment-reminder', deliveryMode: 'tls-required' });
    const id = created.out.id as string;
    expect((await run(['campaign', 'submit', id, '--user', 'marketer'])).out.status).toBe('pending-approval');
    const refused = await run(['campaign', 'approve', id, '--user', 'marketer']);
    expect(refused.exitCode).toBe(1);
    expect(refused.out).toMatchObject({ error: { code: 'FORBIDDEN' } });
    typed = 'not the password';
    expect((await run(['campaign', 'approve', id, '--user', 'clinician'])).out).toMatchObject({ error: { code: 'LOGIN_FAILED' } });
    typed = password;
    expect((await run(['campaign', 'approve', id, '--user', 'clinician', '--comment', 'ok'])).out).toMatchObject({ status: 'approved', audienceCount: 1 });
    const status = await run(['campaign', 'status', id, '--user', 'marketer'], false);
    expect(status.text).toMatch(/approved by clinician/);
    expect(status.text).toMatch(/submitted by marketer \(marketer\)/);
    expect(status.text).toMatch(/approved by clinician \(clinician\): ok/);
    // `campaign send` runs the app's own pipeline from the configuration: the MX has no address record, so the
    // tls-required message is held, not sent another way.
    await w.app.senders.add({ address: 'outreach@clinic.test', displayName: 'Riverside Outreach' }, { name: 'admin', role: 'admin' });
    const sent = await run(['campaign', 'send', id, '--user', 'marketer']);
    expect(sent.exitCode).toBe(0);
    expect(sent.out).toMatchObject({ campaign: { status: 'sending', sendReport: { members: 1, queued: 1 } }, stats: { states: { held: 1 } } });
    const worker = await run(['send', 'run']);
    expect(worker.out).toMatchObject({ delivered: 0, claimed: 0 });
    expect((await run(['campaign', 'cancel', id, '--user', 'marketer'])).out).toMatchObject({ status: 'cancelled', cancelled: 1 });
  });
});
