// A journeys test world: the loopback FHIR server feeding a real sync into the real app (PGlite or PostgreSQL), the send pipeline's outbox, journeys on a simulated clock, and a restart on the same store.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../../connector/config.js';
import { openApp, type App } from '../../../connector/app.js';
import { createSendingService, type SendingService } from '../../../connector/sending/sending-service.js';
import { openJourneys, type Journeys } from '../../../connector/journeys/open-journeys.js';
import type { Session } from '../../../connector/users/authorize.js';
import type { EndpointConfig } from '../../../fhir/endpoint.js';
import { syncEndpoint, type SyncSummary } from '../../../fhir/sync.js';
import { startFhirTestServer, type FhirTestServer } from '../../fhir/support/fhir-test-server.js';
import { registeredEndpoint } from '../../fhir/support/smart-client.js';
import { postgresUrl } from '../../support/postgres.js';

const password = 'correct horse battery staple';

/** A FHIR resource as the test server holds it. */
export type Resource = { resourceType: string; id?: string; meta?: { lastUpdated?: string }; [k: string]: unknown };

export interface QueuedMessage {
  key: string;
  journey: string;
  patient: number;
  purpose: string;
  notBefore: string;
  state: string;
}

export interface JourneyWorld {
  app: App;
  sending: SendingService;
  journeys: Journeys;
  ehr: FhirTestServer;
  sessions: Record<'admin' | 'marketer' | 'clinician', Session>;
  now(): Date;
  /** Moves the simulated clock forward. */
  advance(ms: number): Date;
  /** Adds or replaces resources at the EHR, stamped as changed now (so the next incremental sync reads them). */
  put(...resources: Resource[]): void;
  /** One incremental sync from the EHR into the store, then waits until the journeys have evaluated it. */
  sync(): Promise<SyncSummary>;
  /** Every journey message in the outbox, in queue order. */
  queued(): Promise<QueuedMessage[]>;
  /** Closes the app and opens it again on the same store (a process restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startJourneyWorld(kind: 'pglite' | 'postgres', start: Date): Promise<JourneyWorld> {
  let clock = start;
  const ehr = await startFhirTestServer();
  const endpoint: EndpointConfig = registeredEndpoint(ehr);
  const home = mkdtempSync(join(tmpdir(), 'outreach-journeys-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config: Config = loadConfig({
    OUTREACH_HOME: home,
    OUTREACH_LOG_LEVEL: 'silent',
    OUTREACH_PRACTICE_NAME: 'Riverside Family Medicine',
    ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
  });
  const now = () => clock;
  const open = async () => {
    const app = await openApp(config, { resealInBackground: false });
    const sending = await createSendingService(app, { sender: { address: 'care@clinic.test', displayName: 'Riverside Outreach' }, dkim: null, now, workerId: 'w-journeys' });
    const journeys = await openJourneys(app, { clock: now, sending: async () => sending });
    return { app, sending, journeys };
  };
  let parts = await open();
  const sessions = {} as JourneyWorld['sessions'];
  for (const role of ['admin', 'marketer', 'clinician'] as const) {
    await parts.app.users.add({ username: role, role, password }, { name: 'test-setup', role: 'admin' });
  }
  const login = async () => {
    for (const role of ['admin', 'marketer', 'clinician'] as const) sessions[role] = (await parts.app.users.login(role, password)).session;
  };
  await login();
  const closeParts = async () => {
    parts.journeys.close();
    await parts.sending.close();
    await parts.app.close();
  };
  const world: JourneyWorld = {
    get app() {
      return parts.app;
    },
    get sending() {
      return parts.sending;
    },
    get journeys() {
      return parts.journeys;
    },
    ehr,
    sessions,
    now,
    advance(ms) {
      clock = new Date(clock.getTime() + ms);
      return clock;
    },
    put(...resources) {
      const stamp = new Date(clock.getTime() + 1).toISOString();
      for (const r of resources) {
        r.meta = { ...r.meta, lastUpdated: stamp };
        const at = ehr.resources.findIndex((x) => x.resourceType === r.resourceType && x.id === r.id);
        if (at >= 0) ehr.resources[at] = r;
        else ehr.resources.push(r);
      }
    },
    async sync() {
      const summary = await syncEndpoint(endpoint, parts.app.facts, { mode: 'search', derive: { now: clock }, now });
      await parts.journeys.engine.settled();
      return summary;
    },
    async queued() {
      const rows = await parts.app.db.query<{ idempotency_key: string; campaign_id: string; patient_id: string; purpose: string; next_attempt_at: Date | string; state: string }>(
        `SELECT idempotency_key, campaign_id, patient_id, purpose, next_attempt_at, state FROM delivery_outbox WHERE campaign_id LIKE 'journey/%' ORDER BY id`,
      );
      return rows.map((r) => ({
        key: r.idempotency_key,
        journey: r.campaign_id,
        patient: Number(r.patient_id),
        purpose: r.purpose,
        notBefore: new Date(r.next_attempt_at).toISOString(),
        state: r.state,
      }));
    },
    async restart() {
      await closeParts();
      parts = await open();
      await login();
    },
    async close() {
      await closeParts().catch(() => undefined);
      if (kind === 'postgres') {
        const { openDb } = await import('../../../connector/store/db.js');
        const db = await openDb({ databaseUrl: postgresUrl, schema: 'public' });
        await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await db.close();
      }
      await ehr.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
  return world;
}
