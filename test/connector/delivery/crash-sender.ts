// Child process of the crash test: queues a campaign (idempotently) and sends it through the outbox and two sending threads until done or killed.
import { Dispatcher } from '../../../connector/delivery/dispatcher.js';
import { createOutbox } from '../../../connector/delivery/outbox.js';
import type { RouteCandidate, Router } from '../../../connector/delivery/route.js';
import { createThreadedConnections } from '../../../connector/delivery/sending-threads.js';
import { createStarttlsProbe } from '../../../connector/delivery/starttls-probe.js';
import { createTransport } from '../../../connector/delivery/transport.js';
import { openDb } from '../../../connector/store/db.js';

interface Args {
  port: number;
  ca: string;
  count: number;
  databaseUrl?: string;
  schema?: string;
  dataDir?: string;
  /** How far this run's clock is ahead of the wall clock: each resume jumps past the leases of the killed run. */
  clockSkewMs: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
const now = () => new Date(Date.now() + args.clockSkewMs);
const db = await openDb(args.databaseUrl ? { databaseUrl: args.databaseUrl, schema: args.schema!, poolSize: 4 } : { dataDir: args.dataDir! });
const outbox = createOutbox(db, { messageIdDomain: 'crash.outreach.test', now });
await outbox.enqueue(
  Array.from({ length: args.count }, (_, i) => ({ campaignId: 'crash', templateVersion: 1, patientId: `p${i}`, purpose: 'treatment', deliveryMode: 'tls-required' as const })),
);
const mx = 'mx.crash.test';
const target = { host: '127.0.0.1', port: args.port };
const probe = await createStarttlsProbe({ heloName: 'crash.outreach.test', ca: [args.ca] }).probe({ mx, target, tlsa: [] });
const candidate: RouteCandidate = { mx, target, tlsa: [], mtaSts: { status: 'none' }, dane: { status: 'none' }, probe, verified: !probe.failure, requiresTls: false };
const router: Router = { assess: async (domain) => ({ domain, candidates: [candidate], reasons: [], ...(candidate.verified ? { verified: candidate } : {}) }), forget: () => undefined };
// The wire runs on two sending threads, as in the product: a SIGKILL takes them down mid-send too.
const transport = createTransport({ heloName: 'crash.outreach.test', ca: [args.ca], connections: createThreadedConnections({ heloName: 'crash.outreach.test', ca: [args.ca], threads: 2 }) });
const dispatcher = new Dispatcher({
  outbox, router, transport, now, workerId: `crash-${process.pid}`, leaseMs: 60_000, concurrency: 8, batchSize: 100,
  render: async (m) => ({ from: 'care@crash.outreach.test', to: `${m.patientId}@crash.test`, subject: 'Reminder', text: `Message for ${m.patientId}`, phiFree: false }),
  isAllowed: async () => ({ allowed: true, version: 'auth-1' }),
});
process.send?.({ ready: true });
const summary = await dispatcher.drain();
await transport.close();
await db.close();
process.send?.({ done: true, summary });
