// A SMART launch test world: the campaign world (real app, send pipeline, users per role) behind the real API server with the SMART plugin, a fake EHR authorization server, and one pending campaign.
import type { FastifyInstance } from 'fastify';
import { createApiServer } from '../../../connector/api/server.js';
import type { Campaign } from '../../../connector/campaigns/campaign-service.js';
import { SmartEhrRegistry, type SmartEhr } from '../../../connector/smart/ehr-registry.js';
import { phi } from '../../../fhir/phi.js';
import { startFakeEhr, type FakeEhr, type IdTokenTamper } from '../../support/fake-ehr-auth.js';
import { createTestCa } from '../../support/test-ca.js';
import { startCampaignWorld, type CampaignWorld } from '../campaigns/campaign-world.js';

export const linkedPractitioner = 'Practitioner/dr-ada-1';
export const unlinkedPractitioner = 'Practitioner/dr-nobody-2';

export interface SmartWorld {
  w: CampaignWorld;
  server: FastifyInstance;
  /** `http://127.0.0.1:<port>` of the connector. */
  base: string;
  ehr: FakeEhr;
  /** The test CA of the fake EHR's certificate. */
  ehrCa: string;
  registration: SmartEhr;
  registry: SmartEhrRegistry;
  campaign: Campaign;
  /** A new pending campaign (its own template and segment). */
  pendingCampaign(tag: string): Promise<Campaign>;
  close(): Promise<void>;
}

export interface WorldOptions {
  /** Serve the fake EHR over HTTPS from a test CA the connector trusts (default true). */
  https?: boolean;
  /** The built app page, for the browser test. */
  assetsDir?: string;
}

export async function startSmartWorld(kind: 'pglite' | 'postgres', options: WorldOptions = {}): Promise<SmartWorld> {
  const w = await startCampaignWorld(kind, ['valid', 'no-starttls']);
  // The SMART routes and the campaign routes take the send pipeline from the app: give them the world's (wired to loopback sinks).
  w.app.sending = async () => w.sending;
  const ca = createTestCa('SMART test CA');
  const server = await createApiServer(w.app, { defaultMetrics: false, smart: { ca: [ca.cert], ...(options.assetsDir ? { assetsDir: options.assetsDir } : {}) } });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const ehr = await startFakeEhr({
    clientId: 'outreach-approvals',
    redirectUri: `${base}/smart/callback`,
    appLaunchUrl: `${base}/smart/launch`,
    ...(options.https === false ? {} : { tls: ca.leaf(['127.0.0.1']) }),
  });
  const registry = new SmartEhrRegistry({ db: w.app.db, audit: w.app.audit, users: w.app.users });
  const registration = await registry.register({ name: 'Fake EHR', iss: ehr.iss, clientId: 'outreach-approvals', redirectUri: `${base}/smart/callback` }, { name: 'test-setup', role: 'admin' });
  await registry.link(registration.id, linkedPractitioner, 'clinician', { name: 'test-setup', role: 'admin' });

  let n = 0;
  const pendingCampaign = async (tag: string): Promise<Campaign> => {
    const state = `S${++n}`;
    const ids = await w.addPatients([
      { patientId: `${tag}-1`, state, email: phi(`${tag}-1@valid.test`) },
      { patientId: `${tag}-2`, state, email: phi(`${tag}-2@valid.test`) },
      { patientId: `${tag}-3`, state, email: phi(`${tag}-3@no-starttls.test`) },
      { patientId: `${tag}-4`, state },
    ]);
    for (const id of ids.slice(0, 3)) {
      await w.app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'form-1', textVersion: 'auth-v1' }, { name: 'admin', role: 'admin' });
    }
    await (await w.app.segmentIndex()).settled();
    const segment = await w.sending.segments.save({ name: `${tag} patients`, definition: { type: 'state', value: state }, actor: 'marketer' });
    const template = await w.sending.templates.create({
      name: `${tag} flu shots`,
      content: {
        subject: 'Flu shots are here',
        preheader: 'Book in a minute',
        html: '<p>Hello [first name], flu shots are available. Because of your diabetes, ask about the pneumococcal vaccine too.</p><p>[unsubscribe link]</p>',
        text: 'Hello [first name], flu shots are available. Because of your diabetes, ask about the pneumococcal vaccine too. [unsubscribe link]',
      },
      actor: 'marketer',
    });
    const campaign = await w.sending.campaigns.create(w.sessions.marketer, {
      name: `${tag} flu shots`, template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required',
    });
    return w.sending.campaigns.submit(w.sessions.marketer, campaign.id);
  };
  const campaign = await pendingCampaign('first');

  return {
    w, server, base, ehr, ehrCa: ca.cert, registration, registry, campaign, pendingCampaign,
    async close() {
      await ehr.close();
      await server.close();
      await w.close();
    },
  };
}

/** The cookie pairs a response sets (name=value), for the next request. */
export function cookiesOf(res: Response): Record<string, { value: string; attributes: string }> {
  const out: Record<string, { value: string; attributes: string }> = {};
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair!.indexOf('=');
    out[pair!.slice(0, eq).trim()] = { value: pair!.slice(eq + 1).trim(), attributes: attrs.join(';').trim() };
  }
  return out;
}

export interface LaunchSteps {
  launch: Response;
  authorizeUrl: string;
  launchCookie: string;
  callbackUrl: string;
}

/** Runs a launch up to the redirect back to the connector (not following it): EHR launch with `practitioner` in context, or standalone. */
export async function startLaunch(world: SmartWorld, practitioner: string | null, tamper?: IdTokenTamper): Promise<LaunchSteps> {
  if (tamper) world.ehr.tamperNext(tamper);
  const query = new URLSearchParams({ iss: world.ehr.iss, ...(practitioner ? { launch: world.ehr.createLaunch(practitioner) } : {}) });
  const launch = await fetch(`${world.base}/smart/launch?${query}`, { redirect: 'manual' });
  if (launch.status !== 302) throw new Error(`launch answered ${launch.status}: ${await launch.text()}`);
  const authorizeUrl = launch.headers.get('location')!;
  const launchCookie = Object.entries(cookiesOf(launch)).map(([k, v]) => `${k}=${v.value}`).join('; ');
  // The fake EHR is HTTPS from the test CA: the connector trusts it; this test client reads the redirect with the same CA.
  const authorize = await ehrGet(world, authorizeUrl);
  const callbackUrl = authorize.location;
  return { launch, authorizeUrl, launchCookie, callbackUrl };
}

/** GET on the fake EHR without following redirects; returns the Location. */
async function ehrGet(world: SmartWorld, url: string): Promise<{ status: number; location: string }> {
  const { request } = await import('node:https');
  const { request: plain } = await import('node:http');
  const target = new URL(url);
  const tls = target.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (tls ? request : plain)(
      target,
      { method: 'GET', ...(tls ? { ca: world.ehrCa } : {}) },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? '') });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Follows the redirect back to the connector's callback with the launch cookie (or `cookie`). */
export function callback(url: string, cookie: string): Promise<Response> {
  return fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
}
