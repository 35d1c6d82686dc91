// A campaign test world: the real app (PGlite or PostgreSQL) with one user per role, the send pipeline wired to loopback SMTP sinks, a DNS server and a test CA, and synthetic patients.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../connector/config.js';
import { openApp, type App } from '../../../connector/app.js';
import { createSendingService, type SendingService } from '../../../connector/sending/sending-service.js';
import type { Session } from '../../../connector/users/authorize.js';
import type { PatientFacts } from '../../../fhir/patient-facts.js';
import { phi } from '../../../fhir/phi.js';
import { postgresUrl } from '../../support/postgres.js';
import { startDeliveryWorld, type DeliveryWorld, type Scenario } from '../delivery/world.js';
import { worldSendingOptions } from '../delivery/world-sending.js';

export const password = 'correct horse battery staple';

export interface CampaignWorld {
  app: App;
  delivery: DeliveryWorld;
  sending: SendingService;
  sessions: Record<'admin' | 'marketer' | 'clinician', Session>;
  /** Stores synthetic patients and returns their internal ids (waits until the segment index has them). */
  addPatients(list: Array<Partial<PatientFacts> & { patientId: string }>): Promise<number[]>;
  close(): Promise<void>;
}

let seq = 0;
/** A synthetic patient: every name and date is invented. */
export function patient(overrides: Partial<PatientFacts> & { patientId: string }): PatientFacts {
  return {
    source: 'demo',
    given: phi(`Testgiven${++seq}`),
    family: phi('Testfamily'),
    birthDate: phi('1970-01-15'),
    deceased: false,
    state: 'MA',
    language: 'en-US',
    pcp: { reference: 'Practitioner/9', name: 'Dr. Imaginary Osei', source: 'generalPractitioner' },
    encounters: [],
    conditions: [],
    observations: [],
    coverage: [],
    procedures: [],
    medications: [],
    appointments: [],
    ...overrides,
  };
}

export async function startCampaignWorld(kind: 'pglite' | 'postgres', scenarios: readonly Scenario[] = ['valid', 'no-starttls']): Promise<CampaignWorld> {
  const delivery = await startDeliveryWorld({}, scenarios);
  const home = mkdtempSync(join(tmpdir(), 'outreach-campaigns-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    OUTREACH_HOME: home,
    OUTREACH_LOG_LEVEL: 'silent',
    OUTREACH_DNS_SERVERS: delivery.dns.address,
    OUTREACH_PRACTICE_NAME: 'Riverside Family Medicine',
    ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
  });
  const app = await openApp(config, { resealInBackground: false });
  const sessions = {} as CampaignWorld['sessions'];
  for (const role of ['admin', 'marketer', 'clinician'] as const) {
    await app.users.add({ username: role, role, password }, { name: 'test-setup', role: 'admin' });
    sessions[role] = (await app.users.login(role, password)).session;
  }
  const sending = await createSendingService(app, { ...worldSendingOptions(delivery), publicUrl: 'https://outreach.clinic.test', workerId: 'w-test' });
  return {
    app,
    delivery,
    sending,
    sessions,
    async addPatients(list) {
      const ids = await app.facts.upsertFacts(list.map(patient));
      await (await app.segmentIndex()).settled();
      return ids;
    },
    async close() {
      await sending.close();
      await delivery.close();
      if (kind === 'postgres') await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
