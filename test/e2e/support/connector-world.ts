// The real connector for the extension e2e: openApp on a temp home (PostgreSQL when reachable, else PGlite) behind the real API server on loopback, CORS open to the extension, seeded through the API like an admin and a marketer would.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { apiPrefix } from '../../../connector/api/contract.js';
import { createApiServer } from '../../../connector/api/server.js';
import { openApp, type App } from '../../../connector/app.js';
import { loadConfig } from '../../../connector/config.js';
import { createSendingService, type SendingService } from '../../../connector/sending/sending-service.js';
import type { Session } from '../../../connector/users/authorize.js';
import { firstAdminName } from '../../../connector/users/users.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { phi } from '../../../fhir/phi.js';
import { startDeliveryWorld, type DeliveryWorld } from '../../connector/delivery/world.js';
import { worldSendingOptions } from '../../connector/delivery/world-sending.js';
import { patient } from '../../connector/campaigns/campaign-world.js';
import { hasPostgres, postgresUrl } from '../../support/postgres.js';
import type { ContactFixture } from './lightning-page.js';

/**
 * The id Chromium gives an unpacked extension: the first 128 bits of SHA-256 over its absolute path, each hex digit
 * written as a letter a–p. Known before the browser starts, so the connector can allow the extension's origin.
 */
export { unpackedExtensionId } from '../../../connector/demo/extension-id.js';

export type RoleName = 'admin' | 'marketer' | 'clinician';

export interface SeedPatient {
  contact: ContactFixture;
  given: string;
  family: string;
  birthDate: string;
  /** Marketing authorization on file: granted until `expiresAt`, or granted then the patient opted out. */
  consent: { kind: 'authorized'; expiresAt: string } | { kind: 'opted-out' };
}

export interface ConnectorWorldInput {
  /** chrome-extension://<id> */
  extensionOrigin: string;
  /** The user names; the world creates them with one-time passwords and changes each to `passwords[role]`. */
  usernames: Record<Exclude<RoleName, 'admin'>, string>;
  passwords: Record<RoleName, string>;
  patients: SeedPatient[];
  /** Other synthetic adults, so the segment is more than the two contacts. */
  extraPatients: number;
  template: { name: string; purpose: string; subject: string; preheader: string; body: string };
  segment: { name: string; definition: unknown };
  /** Create users with one-time passwords and change them, as the product does (default), or with `passwords` directly. */
  oneTimePasswords?: boolean;
  /** Sign-in attempts a minute per address (the connector's default when absent); DOM tests sign in more often than people do. */
  loginAttemptsPerMinute?: number;
  /** A campaign sent for real to the first patient before the test, so the badge has a last campaign (none when absent). */
  previousCampaign?: string;
}

export interface ConnectorWorld {
  kind: 'pglite' | 'postgres';
  app: App;
  server: FastifyInstance;
  sending: SendingService;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The first admin's user name (the connector names it). */
  adminUsername: string;
  /** In-process sessions per role, for asserting through the services. */
  sessions: Record<RoleName, Session>;
  patientIds: Record<string, string>;
  templateId: string;
  segmentId: string;
  /** Every request the server answered: method, URL (path and query) and status. */
  requests: Array<{ method: string; url: string; status: number }>;
  close(): Promise<void>;
}

let seq = 0;
/** A seeded patient: the campaign tests' synthetic patient with this contact, its name and an e2e practitioner. */
function facts(p: Omit<SeedPatient, 'contact' | 'consent'> & { email: string; patientId: string; phone?: string }): PatientFacts {
  return patient({
    patientId: p.patientId,
    source: 'e2e',
    given: phi(p.given),
    family: phi(p.family),
    birthDate: phi(p.birthDate),
    gender: 'female',
    email: phi(p.email),
    ...(p.phone ? { phone: phi(p.phone) } : {}),
    pcp: { reference: 'Practitioner/e2e-1', name: 'Dr. Imaginary Osei', source: 'generalPractitioner' },
  });
}

export async function startConnectorWorld(input: ConnectorWorldInput): Promise<ConnectorWorld> {
  const kind = hasPostgres ? 'postgres' : 'pglite';
  const delivery: DeliveryWorld = await startDeliveryWorld({}, ['valid']);
  const home = mkdtempSync(join(tmpdir(), 'outreach-ext-connector-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    OUTREACH_HOME: home,
    OUTREACH_LOG_LEVEL: 'silent',
    OUTREACH_EXTENSION_ORIGINS: input.extensionOrigin,
    OUTREACH_DNS_SERVERS: delivery.dns.address,
    OUTREACH_PRACTICE_NAME: 'Riverside Family Medicine',
    ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
  });
  const app = await openApp(config, { resealInBackground: false });
  // The send pipeline with the MX of valid.test mapped to a loopback STARTTLS sink from the delivery world's CA.
  const sending = await createSendingService(app, { ...worldSendingOptions(delivery), workerId: 'e2e' });
  app.sending = async () => sending;
  const server = await createApiServer(app, { defaultMetrics: false, ...(input.loginAttemptsPerMinute ? { loginThrottle: { maxAttempts: input.loginAttemptsPerMinute } } : {}) });
  const requests: ConnectorWorld['requests'] = [];
  server.addHook('onResponse', async (request, reply) => {
    requests.push({ method: request.method, url: request.url, status: reply.statusCode });
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const call = async (method: string, path: string, token: string | null, body?: unknown): Promise<any> => {
    const res = await fetch(`${url}${apiPrefix}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding: ${method} ${path} answered ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };

  // Users as the product makes them: the first admin and each new user get a one-time password, which only lets
  // them change it; then they sign in with their own. DOM tests may skip that (`oneTimePasswords: false`): scrypt is
  // most of a seeding's CPU.
  const usernames = { admin: firstAdminName, ...input.usernames } as Record<RoleName, string>;
  const roles = ['admin', 'marketer', 'clinician'] as const;
  if (input.oneTimePasswords === false) {
    await Promise.all(roles.map((role) => app.users.add({ username: usernames[role], role, password: input.passwords[role] }, { name: 'e2e-setup', role: 'admin' })));
  } else {
    const first = await app.users.ensureFirstAdmin();
    if (!first) throw new Error('seeding: the store already had an admin');
    const otps = { admin: first.password } as Record<RoleName, string>;
    await Promise.all(
      (['marketer', 'clinician'] as const).map(async (role) => {
        otps[role] = (await app.users.add({ username: usernames[role], role }, { name: first.username, role: 'admin' })).oneTimePassword!;
      }),
    );
    await Promise.all(
      roles.map(async (role) => {
        const once = await app.users.login(usernames[role], otps[role]);
        if (!once.session.mustChangePassword) throw new Error(`seeding: ${role} signed in with a one-time password and was not asked to change it`);
        await app.users.changePassword(once.session, otps[role], input.passwords[role]);
      }),
    );
  }
  const tokens = {} as Record<RoleName, string>;
  const sessions = {} as Record<RoleName, Session>;
  await Promise.all(
    roles.map(async (role) => {
      const signedIn = await app.users.login(usernames[role], input.passwords[role]);
      tokens[role] = signedIn.token;
      sessions[role] = signedIn.session;
    }),
  );

  // Patients: the contacts (linked to their Salesforce Contact ids) and other synthetic adults.
  const all = [
    ...input.patients.map((p) => facts({ ...p, patientId: `e2e-${p.contact.id}`, email: p.contact.email, phone: p.contact.phone })),
    ...Array.from({ length: input.extraPatients }, (_, i) =>
      facts({ patientId: `e2e-extra-${++seq}`, given: `Testgiven${i}`, family: 'Testfamily', birthDate: '1970-01-15', email: `extra-${i}@valid.test` }),
    ),
  ];
  const ids = await app.facts.upsertFacts(all);
  const patientIds: Record<string, string> = {};
  for (const [i, p] of input.patients.entries()) {
    patientIds[p.contact.id] = String(ids[i]);
    await app.facts.setCrmId(ids[i]!, p.contact.id);
  }
  // Consent as an admin records it.
  for (const p of input.patients) {
    const id = patientIds[p.contact.id]!;
    if (p.consent.kind === 'authorized') {
      await call('POST', `/consent/${id}/grant`, tokens.admin, { purpose: 'marketing', evidence: 'signed-form-e2e', textVersion: 'hipaa-mkt-v3', expiresAt: p.consent.expiresAt });
    } else {
      await call('POST', `/consent/${id}/grant`, tokens.admin, { purpose: 'marketing', evidence: 'signed-form-e2e', textVersion: 'hipaa-mkt-v3' });
      await call('POST', `/consent/${id}/revoke`, tokens.admin, { reason: 'unsubscribed by phone' });
    }
  }
  await (await app.segmentIndex()).settled();

  // A template and a segment as the marketer makes them.
  const template = await call('POST', '/templates', tokens.marketer, input.template);
  const segment = await call('POST', '/segments', tokens.marketer, { name: input.segment.name, definition: input.segment.definition });
  await call('POST', `/segments/${segment.id}/count`, tokens.marketer);

  if (input.previousCampaign) {
    // A campaign that really went out to the first contact: created, approved, scheduled and delivered to the sink.
    const target = input.patients[0]!.contact.id;
    const previous = await sending.campaigns.create(sessions.marketer, {
      name: input.previousCampaign, template: { templateId: Number(template.id) }, audience: { kind: 'contact', crmId: target }, purpose: input.template.purpose, deliveryMode: 'tls-required',
    });
    await sending.campaigns.submit(sessions.marketer, previous.id);
    await sending.campaigns.approve(sessions.clinician, previous.id, 'Seeded for the e2e.');
    await sending.campaigns.schedule(sessions.marketer, previous.id);
    await sending.drainOnce();
    const delivered = await sending.outbox.campaignStates(`campaign/${previous.id}`);
    if (delivered.delivered !== 1) throw new Error(`seeding: the previous campaign was not delivered: ${JSON.stringify(delivered)}`);
  }
  requests.length = 0;

  return {
    kind,
    app,
    server,
    sending,
    url,
    adminUsername: usernames.admin,
    sessions,
    patientIds,
    templateId: String(template.id),
    segmentId: String(segment.id),
    requests,
    async close() {
      await server.close();
      await sending.close();
      await delivery.close();
      if (kind === 'postgres') await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
