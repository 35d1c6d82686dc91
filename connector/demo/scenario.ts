// The demo scenario on embedded defaults: demo EHR, mail domains and DNS on loopback, the connector's store, users, endpoint, sync, segment, template, approval and a tls-or-escrow send, with its counts.
import { createWriteStream, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { FhirResource, Patient } from 'fhir/r4.js';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { openApp, type App } from '../app.js';
import { startApiServer } from '../api/server.js';
import type { Config } from '../config.js';
import { tableConnectTarget } from '../delivery/mx-resolver.js';
import { asOutreachError } from '../errors.js';
import { checkEndpoint, endpointRegistry, syncRegisteredEndpoint } from '../ingest/endpoint-sync.js';
import { createLogger } from '../logger.js';
import type { ExclusionCounts } from '../campaigns/recipients.js';
import type { TemplateVersion } from '../compose/template-store.js';
import { createSendingService, type SendingService } from '../sending/sending-service.js';
import { DkimKeyStore } from '../sending/dkim-keys.js';
import type { Role } from '../users/permissions.js';
import type { Session } from '../users/authorize.js';
import { generateSigningKey, publicJwks } from '../../fhir/endpoint.js';
import { startDemoWeb, type DemoWeb } from './demo-web.js';
import { demoMailDomains, demoSenderDomain, startDemoWorld, type DemoWorld } from './demo-world.js';
import { generatePopulation } from './population.js';
import { flattenBundles, readSyntheaBundles } from './synthea-fixtures.js';

export const demoEndpointName = 'demo-ehr';
export const demoClientId = 'secure-outreach-demo';
export const demoSegmentName = 'Diabetics, HbA1c above 9, no visit in 12 months';
export const demoTemplateName = 'Overdue check-in';
/** Diabetics (active condition) whose latest HbA1c is above 9 and who have had no visit in the last 365 days. */
export const demoSegmentDefinition = {
  all: [
    { type: 'condition', valueSet: 'diabetes', status: 'active' },
    { type: 'hba1c', op: '>', value: 9 },
    { not: { type: 'lastVisit', withinDays: 365 } },
  ],
} as const;
export const demoTemplate = {
  subject: 'Time for your check-in',
  preheader: 'Book a visit with your care team',
  html: '<p>Hello [first name|there],</p><p>It has been a while since your last visit. [pcp name] would like to see you for a check-in.</p><p>Call us at [practice phone] to book.</p><p>[practice name], [practice address]</p><p><a href="[unsubscribe link]">Unsubscribe</a></p>',
  text: 'Hello [first name|there],\n\nIt has been a while since your last visit. [pcp name] would like to see you for a check-in.\nCall us at [practice phone] to book.\n\n[practice name], [practice address]\nUnsubscribe: [unsubscribe link]',
  fromName: 'pcp',
};

export interface DemoOptions {
  /** The configuration as loaded (OUTREACH_HOME, DATABASE_URL, log level...); the demo adds its loopback parts. */
  config: Config;
  patients: number;
  seed: number;
  /** The day the population is generated for (YYYY-MM-DD, UTC); default today. */
  day?: string;
  /** Listen port of the connector API, its portal and unsubscribe pages (0 picks a free one; a taken port falls back to 0). */
  apiPort: number;
  /** Prints one line of progress. */
  say(line: string): void;
}

export interface DemoSummary {
  ok: boolean;
  failedStep?: string;
  error?: { code: string; message: string };
  population: { patients: number; seed: number; day: string; mailDomains: string[]; syntheaPatients: number };
  synced?: { patientsUpdated: number; resources: number; quarantined: number; consents: number };
  segment?: { size: number; total: number };
  campaign?: { id: string; status: string; members: number; queued: number; excluded: ExclusionCounts };
  delivery?: { tls: number; escrowed: number; held: number; failed: number; byDomain: Record<string, { messages: number; secure: number }> };
  portal?: { opened: boolean };
  urls?: { api: string; openApi: string; inbox: string; portal: string; ehr: string };
  users?: string[];
}

export interface RunningDemo {
  summary: DemoSummary;
  app: App | undefined;
  world: DemoWorld | undefined;
  web: DemoWeb | undefined;
  sending: SendingService | undefined;
  /** The connector API server's close, once it is listening. */
  closeApi?: () => Promise<void>;
  close(): Promise<void>;
}

const isoDay = (d: Date) => d.toISOString().slice(0, 10);
const demoPassword = () => `${randomBytes(12).toString('base64url')}-Demo`;

/** Runs the scenario; never throws: a failed step is named in the summary (ok=false) and what started is returned for closing. */
export async function runDemo(options: DemoOptions): Promise<RunningDemo> {
  const { say } = options;
  const day = options.day ?? isoDay(new Date());
  const now = new Date(`${day}T00:00:00Z`);
  const summary: DemoSummary = {
    ok: false,
    population: { patients: options.patients, seed: options.seed, day, mailDomains: [demoMailDomains.tls, demoMailDomains.plain], syntheaPatients: 0 },
  };
  const running: RunningDemo = {
    summary,
    app: undefined,
    world: undefined,
    web: undefined,
    sending: undefined,
    close: async () => {
      await running.closeApi?.().catch(() => undefined);
      await running.sending?.close().catch(() => undefined);
      await running.app?.close().catch(() => undefined);
      await running.web?.close().catch(() => undefined);
      await running.world?.close().catch(() => undefined);
    },
  };
  let step = 'start';
  const stepStart = (name: string) => {
    step = name;
  };
  try {
    stepStart('generate the population');
    const population = generatePopulation({ patients: options.patients, seed: options.seed, now, mailDomains: summary.population.mailDomains });
    const synthea = flattenBundles(readSyntheaBundles(), now.toISOString());
    summary.population.syntheaPatients = synthea.filter((r) => r.resourceType === 'Patient').length;
    const resources: FhirResource[] = [...population.resources, ...synthea];
    say(`demo EHR: ${options.patients} generated patients (seed ${options.seed}, as of ${day}) + ${summary.population.syntheaPatients} Synthea patients, ${resources.length} resources`);

    stepStart('start the demo EHR, mail domains and DNS');
    const home = options.config.home;
    running.world = await startDemoWorld({ resources, caFile: join(home, 'demo', 'demo-ca.pem') });
    const world = running.world;
    running.web = await startDemoWeb(world.mailboxes);
    const web = running.web;
    // The API serves the escrow portal and unsubscribe pages: its address is the public URL of the links.
    const apiPort = await freePort(options.apiPort);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const config: Config = {
      ...options.config,
      extraCaFile: world.caFile,
      dnsServers: [world.dns.address],
      publicUrl: apiUrl,
      practiceName: options.config.practiceName ?? 'Riverside Family Medicine',
      practicePhone: options.config.practicePhone ?? '555-0100',
      practiceAddress: options.config.practiceAddress ?? '1 Elm Street, Boston, MA 02110',
      heloName: options.config.heloName ?? `outreach.${demoSenderDomain}`,
      logFile: options.config.logFile ?? join(home, 'logs', 'demo.log'),
    };
    mkdirSync(dirname(config.logFile!), { recursive: true });
    const logStream = createWriteStream(config.logFile!, { flags: 'a', mode: 0o600 });
    const log = createLogger({ level: config.logLevel, destination: logStream });
    say(`demo EHR at ${world.ehr.url} (HTTPS, demo CA in ${world.caFile}); mail domains ${world.mailboxes.map((m) => `${m.domain} (${m.tls ? 'STARTTLS' : 'no TLS'})`).join(', ')}; DNS ${world.dns.address}`);

    stepStart('open the store');
    running.app = await openApp(config, { log });
    const app = running.app;
    const closeApp = app.close;
    app.close = async () => {
      await closeApp();
      await new Promise<void>((resolve) => logStream.end(resolve));
    };
    const api = await startApiServer(app, { host: '127.0.0.1', port: apiPort });
    running.closeApi = () => api.server.close();
    summary.urls = { api: `${api.url}/api/v1`, openApi: `${api.url}/api/v1/openapi.json`, inbox: web.url, portal: `${api.url}/m/`, ehr: world.ehr.url };
    say(config.databaseUrl ? 'store: PostgreSQL (DATABASE_URL)' : `store: PGlite in ${join(home, 'pglite')} (master key ${config.masterKey ? 'from OUTREACH_MASTER_KEY' : `in ${join(home, 'master.key')}`})`);

    stepStart('set up the users');
    const setup = { name: 'demo-setup', role: 'admin' };
    const sessions = {} as Record<Role, Session>;
    const printed: string[] = [];
    for (const role of ['admin', 'marketer', 'clinician'] as const) {
      const password = demoPassword();
      if (await app.users.byName(role)) {
        // A re-run: the earlier password was shown once and is not kept; a reset, then the user sets the new one.
        const oneTime = await app.users.resetPassword(role, setup);
        const first = await app.users.login(role, oneTime);
        await app.users.changePassword(first.session, oneTime, password);
      } else {
        await app.users.add({ username: role, role, password }, setup);
      }
      sessions[role] = (await app.users.login(role, password)).session;
      printed.push(`${role} / ${password}`);
    }
    summary.users = ['admin', 'marketer', 'clinician'];
    say(`users (passwords shown once): ${printed.join(', ')}`);

    stepStart('register the demo EHR endpoint');
    const registry = endpointRegistry(app);
    if ((await registry.list()).some((e) => e.name === demoEndpointName)) await registry.remove(demoEndpointName);
    const key = generateSigningKey('ES384');
    await registry.add({ name: demoEndpointName, baseUrl: world.ehr.url, clientId: demoClientId, privateKey: key.privateKeyPem, kid: key.kid, scopes: ['system/*.read'] });
    const jwk = publicJwks(await registry.get(demoEndpointName)).keys[0]!;
    world.ehr.registerClient(demoClientId, jwk as never, 'ES384');
    const check = await checkEndpoint(app, demoEndpointName);
    say(`endpoint ${demoEndpointName}: SMART backend client ${demoClientId}, ES384 key sealed in the store, public JWK registered at the EHR; token from ${check.tokenUrl} (${check.token?.scope ?? ''})`);

    stepStart('sync');
    const synced = await syncRegisteredEndpoint(app, demoEndpointName, { mode: 'bulk', full: true });
    summary.synced = {
      patientsUpdated: synced.patientsUpdated,
      resources: Object.values(synced.resources).reduce((a, b) => a + b, 0),
      quarantined: synced.quarantined,
      consents: synced.consents,
    };
    say(`synced: ${synced.patientsUpdated} patients, ${summary.synced.resources} resources, ${synced.consents} consents, ${synced.quarantined} quarantined, by Bulk $export in ${(synced.durationMs / 1000).toFixed(1)} s`);

    stepStart('set up the sender');
    const dkimKeys = new DkimKeyStore({ db: app.db, cipher: app.cipher });
    const dkim = (await dkimKeys.info(demoSenderDomain, 'demo')) ?? (await dkimKeys.create(demoSenderDomain, 'demo', setup.name));
    world.publishTxt(dkim.dnsName, dkim.dnsValue);
    const senderAddress = `care@${demoSenderDomain}`;
    if (!(await app.senders.list()).some((s) => s.address === senderAddress)) {
      await app.senders.add({ address: senderAddress, displayName: config.practiceName!, dkimSelector: 'demo' }, setup);
    }
    running.sending = await createSendingService(app, { connectTarget: tableConnectTarget(world.connectTable), timeoutMs: 10_000, retryDelaysMs: [2_000, 10_000] });
    const sending = running.sending;
    // The API's campaign routes use this pipeline (it knows where the demo MX hosts listen).
    app.sending = async () => sending;

    stepStart('build the segment');
    await (await app.segmentIndex()).settled();
    const explained = await sending.segments.explain(demoSegmentDefinition);
    const segment = await sending.segments.save({ name: demoSegmentName, definition: demoSegmentDefinition, actor: 'marketer' });
    const counted = await sending.segments.count(demoSegmentDefinition);
    summary.segment = { size: counted.count, total: counted.total };
    say(`segment "${demoSegmentName}": ${counted.count} of ${counted.total} patients (${explained.steps.map((s) => `${s.description}: ${s.count}`).join('; ')})`);

    stepStart('write the template');
    let template: TemplateVersion;
    try {
      template = await sending.templates.create({ name: demoTemplateName, content: demoTemplate, actor: 'marketer' });
    } catch (err) {
      if (asOutreachError(err).code !== 'CONFLICT') throw err;
      template = await sending.templates.update({ name: demoTemplateName, content: demoTemplate, actor: 'marketer' });
    }
    say(`template "${demoTemplateName}" v${template.version}: merge tags ${template.mergeTags.join(', ')}; From name: the patient's PCP; allowed delivery modes ${template.deliveryModes.join(', ')}`);

    stepStart('submit and approve the campaign');
    const name = `Overdue check-in ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
    const draft = await sending.campaigns.create(sessions.marketer, {
      name, template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-or-escrow',
    });
    await sending.campaigns.submit(sessions.marketer, draft.id);
    const approved = await sending.campaigns.approve(sessions.clinician, draft.id, 'Approved for the demo');
    say(`campaign ${draft.id} "${name}": submitted by marketer, approved by clinician (approval hash ${approved.approvalHash?.slice(0, 12)}…, audience ${approved.audienceCount})`);

    stepStart('send');
    await sending.campaigns.schedule(sessions.marketer, draft.id);
    let campaign = await sending.campaigns.get(sessions.marketer, draft.id);
    // Until every message is finished; a retried message waits for its next attempt (bounded: two minutes).
    const deadline = Date.now() + 120_000;
    for (;;) {
      await sending.drainOnce();
      campaign = await sending.campaigns.get(sessions.marketer, draft.id);
      if (campaign.status === 'sent' || Date.now() > deadline) break;
      const due = (await sending.outbox.nextDue())?.getTime() ?? Date.now() + 200;
      await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(due - Date.now(), 20), 5_000)));
    }
    const report = campaign.sendReport;
    if (!report) throw new Error('the campaign was not materialised');
    summary.campaign = { id: campaign.id, status: campaign.status, members: report.members, queued: report.queued, excluded: report.excluded };
    const excludedText = Object.entries(report.excluded).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ');
    say(`send run: ${report.members} members, ${report.queued} queued; excluded: ${excludedText || 'none'}`);
    const stats = await sending.campaigns.stats(sessions.marketer, campaign.id);
    const byDomain: Record<string, { messages: number; secure: number }> = {};
    for (const m of world.mailboxes) byDomain[m.domain] = { messages: m.sink.messages.length, secure: m.sink.messages.filter((x) => x.secure).length };
    summary.delivery = { tls: stats.states.delivered ?? 0, escrowed: stats.states.notice_sent ?? 0, held: stats.states.held ?? 0, failed: stats.states.failed ?? 0, byDomain };
    say(`delivered over verified TLS: ${summary.delivery.tls}; escrowed (PHI-free notice + portal): ${summary.delivery.escrowed}; held: ${summary.delivery.held}; failed: ${summary.delivery.failed}; campaign ${campaign.status}`);
    if (campaign.status !== 'sent') throw new Error(`the campaign ended as ${campaign.status}`);

    stepStart('open an escrowed message in the portal');
    summary.portal = { opened: await openOneInPortal(world, apiUrl, population.resources) };
    say(summary.portal.opened ? 'portal: an escrowed message opened after the one-time code and the date of birth' : 'portal: no escrowed message to open');

    stepStart('audit');
    const verified = await app.audit.verify();
    if (!verified.ok) throw new Error('the audit chain does not verify');
    say('audit: the hash chain verifies');
    summary.ok = summary.delivery.failed === 0 && summary.delivery.held === 0 && (summary.delivery.escrowed === 0 || summary.portal.opened);
    if (!summary.ok) summary.failedStep = 'delivery';
  } catch (err) {
    const e = asOutreachError(err);
    summary.ok = false;
    summary.failedStep = step;
    summary.error = { code: e.code, message: e.code === 'INTERNAL' && err instanceof Error ? err.message : e.message };
    say(`FAILED at "${step}": ${summary.error.code}: ${summary.error.message}`);
  }
  return running;
}

/** Goes through the portal pages as the recipient of the first notice would: a code by email, the code and the date of birth. */
/** `wanted` when it is free, else any free port (another demo may hold the configured one). */
async function freePort(wanted: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const probe = createNetServer();
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => {
        const { port: got } = probe.address() as AddressInfo;
        probe.close(() => resolve(got));
      });
    });
  try {
    return await tryListen(wanted);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return tryListen(0);
  }
}

async function openOneInPortal(world: DemoWorld, portalBase: string, resources: readonly FhirResource[]): Promise<boolean> {
  const plain = world.mailboxes.find((m) => !m.tls)!.sink;
  const notice = plain.messages.find((m) => /\/m\/[A-Za-z0-9_-]{43}/.test(m.raw.toString('utf8')));
  if (!notice) return false;
  const token = /\/m\/([A-Za-z0-9_-]{43})/.exec(notice.raw.toString('utf8'))![1]!;
  const to = notice.to[0]!.toLowerCase();
  const patient = resources.find((r): r is Patient => r.resourceType === 'Patient' && (r.telecom ?? []).some((t) => t.system === 'email' && t.value?.toLowerCase() === to));
  if (!patient?.birthDate) return false;
  const given = patient.name?.[0]?.given?.[0] ?? '';
  const landing = await fetch(`${portalBase}/m/${token}`);
  // Before the checks the portal shows nothing of the patient.
  if (!landing.ok || given === '' || (await landing.text()).includes(given)) return false;
  const before = plain.messages.length;
  const asked = await fetch(`${portalBase}/m/${token}/code`, { method: 'POST' });
  if (!asked.ok) return false;
  await plain.waitFor(before + 1, 20_000);
  const code = /code is (\d{6})/.exec(plain.messages[before]!.raw.toString('utf8'))?.[1];
  if (!code) return false;
  const opened = await fetch(`${portalBase}/m/${token}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ code, birthDate: patient.birthDate }).toString(),
  });
  return opened.ok && given !== '' && (await opened.text()).includes(given);
}
