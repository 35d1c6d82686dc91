// Benchmark: DKIM-signed mail over verified STARTTLS to a loopback sink, through the durable outbox with the consent gate (PGlite and PostgreSQL), against a bare nodemailer pool in the same run.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { createDkimSigner } from '../../connector/delivery/dkim.js';
import { Dispatcher } from '../../connector/delivery/dispatcher.js';
import type { RenderedMessage } from '../../connector/delivery/mime.js';
import { createOutbox, type OutboxMessage } from '../../connector/delivery/outbox.js';
import type { RouteCandidate, Router } from '../../connector/delivery/route.js';
import { createStarttlsProbe } from '../../connector/delivery/starttls-probe.js';
import { createTransport } from '../../connector/delivery/transport.js';
import { openDb, type Db } from '../../connector/store/db.js';
import { createTestCa, testDkimKey } from '../support/test-ca.js';
import { postgresAvailable, postgresUrl } from '../support/postgres.js';

const args = process.argv.slice(2);

// --- child mode: the loopback sink, in its own process so that it does not share our event loop.
if (args[0] === '--sink') {
  const { key, cert } = JSON.parse(readFileSync(args[1]!, 'utf8')) as { key: string; cert: string };
  let count = 0;
  const server = new SMTPServer({
    key, cert, authOptional: true, disableReverseLookup: true, logger: false, maxClients: 200,
    onData(stream, session, cb) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        if (session.secure) count++;
        cb();
      });
    },
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.server.address() as { port: number }).port }));
  process.on('message', (m) => {
    if (m === 'count') process.send!({ count });
  });
} else if (args[0] === '--dispatch') {
  await dispatchChild(JSON.parse(args[1]!) as ChildArgs);
} else {
  await main();
}

interface ChildArgs {
  schema: string;
  port: number;
  ca: string;
  mx: string;
  poolSize: number;
}

/** A second sending process on the same PostgreSQL outbox: claims with SKIP LOCKED alongside the others. */
async function dispatchChild(a: ChildArgs) {
  const db = await openDb({ databaseUrl: postgresUrl, schema: a.schema, poolSize: 4 });
  const { dispatcher, transport } = productParts(db, a.port, a.ca, a.mx, a.poolSize);
  process.send!({ ready: true });
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  const summary = await dispatcher.drain();
  await transport.close();
  await db.close();
  process.send!({ delivered: summary.delivered });
}

function renderedFor(i: number): RenderedMessage {
  return {
    from: 'Riverside Clinic <care@sender.bench.test>', to: `patient${i}@bench.test`, subject: `Your reminder ${i}`,
    text: `Dear patient ${i},\n\nthis is a reminder that your annual wellness visit is due. Book online or call us.\n\n` + 'Riverside Clinic\n'.repeat(8),
    phiFree: false,
  };
}

/** The product's sending side: outbox, a fixed verified route (probed once), the transport and the dispatcher. */
function productParts(db: Db, port: number, caPem: string, mx: string, poolSize: number) {
  const outbox = createOutbox(db, { messageIdDomain: 'sender.bench.test' });
  const target = { host: '127.0.0.1', port };
  const probe = createStarttlsProbe({ heloName: 'sender.bench.test', ca: [caPem] });
  const router: Router = {
    assess: async (domain) => {
      const p = await probe.probe({ mx, target, tlsa: [] });
      const candidate: RouteCandidate = { mx, target, tlsa: [], mtaSts: { status: 'none' }, dane: { status: 'none' }, probe: p, verified: !p.failure, requiresTls: false };
      return { domain, candidates: [candidate], reasons: p.failure ? [p.failure] : [], ...(p.failure ? {} : { verified: candidate }) };
    },
    forget: () => undefined,
  };
  const transport = createTransport({ heloName: 'sender.bench.test', ca: [caPem], maxConnectionsPerMx: poolSize, maxPerDomain: poolSize * 4, maxMessagesPerConnection: 1000 });
  const dispatcher = new Dispatcher({
    outbox, router, transport,
    render: async (m: OutboxMessage) => renderedFor(Number(m.patientId)),
    // The consent gate: an authorization look-up per message at dispatch.
    isAllowed: async (patientId) => (Number(patientId) >= 0 ? { allowed: true, version: 'auth-1' } : { allowed: false, reason: 'none' }),
    dkim: createDkimSigner({ domainName: 'sender.bench.test', keySelector: 'bench', privateKey: testDkimKey().privateKey }),
    concurrency: poolSize * 4, batchSize: 500, leaseMs: 300_000,
  });
  return { outbox, dispatcher, transport };
}

async function main() {
  // `node --import tsx test/bench/delivery.ts [messages] [--processes K]`: K > 1 adds a run with K sending processes.
  const pIndex = args.indexOf('--processes');
  const processes = pIndex >= 0 ? Number(args[pIndex + 1] ?? 2) : 1;
  const n = Number(args.find((a, i) => /^\d+$/.test(a) && (pIndex < 0 || i !== pIndex + 1)) ?? 20_000);
  const mx = 'mx.bench.test';
  const ca = createTestCa();
  const leaf = ca.leaf([mx]);
  const dir = mkdtempSync(join(tmpdir(), 'bench-delivery-'));
  writeFileSync(join(dir, 'cert.json'), JSON.stringify({ key: leaf.key, cert: leaf.cert }));
  const sink: ChildProcess = fork(new URL(import.meta.url).pathname, ['--sink', join(dir, 'cert.json')], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => sink.once('message', (m: { port: number }) => resolve(m.port)));
  const sinkCount = () => new Promise<number>((resolve) => {
    sink.once('message', (m: { count: number }) => resolve(m.count));
    sink.send('count');
  });
  const dkimKey = testDkimKey().privateKey;
  const rendered = renderedFor;
  const poolSize = 5;

  // --- baseline: a bare nodemailer pool, pre-rendered messages, DKIM with the same KeyObject, same TLS checks.
  const baseline = async (): Promise<number> => {
    const before = await sinkCount();
    const transporter = nodemailer.createTransport({
      pool: true, maxConnections: poolSize, maxMessages: 1000, host: '127.0.0.1', port, name: 'sender.bench.test', requireTLS: true,
      tls: { servername: mx, ca: [ca.cert], rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      dkim: { domainName: 'sender.bench.test', keySelector: 'bench', privateKey: dkimKey },
    });
    const messages = Array.from({ length: n }, (_, i) => rendered(i));
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: poolSize * 4 }, async () => {
        while (next < messages.length) {
          const m = messages[next++]!;
          await transporter.sendMail({ from: m.from, to: m.to, subject: m.subject, text: m.text });
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    transporter.close();
    const got = (await sinkCount()) - before;
    if (got !== n) throw new Error(`baseline: sink got ${got}/${n}`);
    return n / secs;
  };

  // --- the product: outbox (durable store) + consent gate + render at dispatch + DKIM + verified-TLS transport.
  const product = async (db: Db): Promise<{ rate: number; enqueueSecs: number }> => {
    const before = await sinkCount();
    const outbox = createOutbox(db, { messageIdDomain: 'sender.bench.test' });
    const te = performance.now();
    for (let i = 0; i < n; i += 5000) {
      await outbox.enqueue(
        Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({
          campaignId: `bench-${db.kind}`, templateVersion: 1, patientId: String(i + k), purpose: 'marketing', deliveryMode: 'tls-required' as const,
        })),
      );
    }
    const enqueueSecs = (performance.now() - te) / 1000;
    const { dispatcher, transport } = productParts(db, port, ca.cert, mx, poolSize);
    const t0 = performance.now();
    const summary = await dispatcher.drain();
    const secs = (performance.now() - t0) / 1000;
    await transport.close();
    const got = (await sinkCount()) - before;
    if (summary.delivered !== n || got !== n) throw new Error(`product: delivered ${summary.delivered}, sink got ${got}/${n}`);
    return { rate: n / secs, enqueueSecs };
  };

  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`delivery bench: ${n} messages, DKIM rsa-sha256 (2048), STARTTLS verified against the test CA, pool ${poolSize}, sink in a child process`);
  const base = await baseline();
  out(`baseline  bare nodemailer pool (pre-rendered):        ${base.toFixed(0)} msg/s`);
  const pgliteDir = join(dir, 'pglite');
  const pglite = await openDb({ dataDir: pgliteDir });
  const a = await product(pglite);
  await pglite.close();
  out(`outreach  outbox on PGlite (on disk) + consent gate:   ${a.rate.toFixed(0)} msg/s  ratio ${(a.rate / base).toFixed(2)}x  (enqueue ${a.enqueueSecs.toFixed(1)} s)`);
  if (await postgresAvailable()) {
    const schema = `bench_${process.pid}`;
    const pg = await openDb({ databaseUrl: postgresUrl, schema, poolSize: 8 });
    try {
      const b = await product(pg);
      out(`outreach  outbox on PostgreSQL + consent gate:        ${b.rate.toFixed(0)} msg/s  ratio ${(b.rate / base).toFixed(2)}x  (enqueue ${b.enqueueSecs.toFixed(1)} s)`);
      if (processes > 1) {
        const c = await multiProcess(pg, schema, processes);
        out(`outreach  PostgreSQL, ${processes} sending processes:            ${c.toFixed(0)} msg/s  ratio ${(c / base).toFixed(2)}x`);
      }
    } finally {
      await pg.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pg.close();
    }
  }
  out('target: >= 1000 msg/s on 2 cores and >= 0.7x the baseline');

  /** The same campaign size sent by `k` processes sharing the PostgreSQL outbox (SKIP LOCKED). */
  async function multiProcess(pg: Db, schema: string, k: number): Promise<number> {
    const before = await sinkCount();
    const outbox = createOutbox(pg, { messageIdDomain: 'sender.bench.test' });
    for (let i = 0; i < n; i += 5000) {
      await outbox.enqueue(
        Array.from({ length: Math.min(5000, n - i) }, (_, j) => ({
          campaignId: 'bench-multi', templateVersion: 1, patientId: String(i + j), purpose: 'marketing', deliveryMode: 'tls-required' as const,
        })),
      );
    }
    const childArgs: ChildArgs = { schema, port, ca: ca.cert, mx, poolSize };
    const children = Array.from({ length: k }, () => fork(new URL(import.meta.url).pathname, ['--dispatch', JSON.stringify(childArgs)], { execArgv: ['--import', 'tsx'] }));
    await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))));
    const t0 = performance.now();
    const done = children.map((c) => new Promise<number>((resolve) => c.once('message', (m: { delivered: number }) => resolve(m.delivered))));
    for (const c of children) c.send('go');
    const delivered = (await Promise.all(done)).reduce((a, b) => a + b, 0);
    const secs = (performance.now() - t0) / 1000;
    const got = (await sinkCount()) - before;
    if (delivered !== n || got !== n) throw new Error(`multi-process: delivered ${delivered}, sink got ${got}/${n}`);
    return n / secs;
  }
  sink.kill();
  rmSync(dir, { recursive: true, force: true });
}
