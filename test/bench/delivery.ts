// Benchmark: a real campaign (sealed facts, consent registry, clinician approval) sent through the durable outbox with the consent gate at dispatch, render in memory, DKIM and verified STARTTLS to a loopback sink (PGlite and PostgreSQL), against a bare nodemailer pool in the same run.
// Usage: node --import tsx test/bench/delivery.ts [messages, default 20000] [--connections N, default 10] [--threads N, default the product's] [--profile <dir>]
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../../connector/config.js';
import { openApp } from '../../connector/app.js';
import { createDkimSigner } from '../../connector/delivery/dkim.js';
import { createDnsLookup } from '../../connector/delivery/dns-client.js';
import { tableConnectTarget } from '../../connector/delivery/mx-resolver.js';
import { createSendingService } from '../../connector/sending/sending-service.js';
import { phi } from '../../fhir/phi.js';
import { patient } from '../connector/campaigns/campaign-world.js';
import { startDnsServer } from '../support/dns-server.js';
import { createTestCa, testDkimKey, type TestCa } from '../support/test-ca.js';
import { postgresAvailable, postgresUrl } from '../support/postgres.js';

const args = process.argv.slice(2);

const domain = 'bench.test';
const profileDir = args.includes('--profile') ? args[args.indexOf('--profile') + 1] : undefined;

/** Busy and total jiffies of the whole machine (Linux /proc/stat): the share of both cores the run used. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3]! + (cpu[4] ?? 0);
    const total = cpu.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** With `--profile <dir>`, writes a V8 CPU profile of `work` (the send phase only) to <dir>/delivery-<label>.cpuprofile. */
async function profiled(label: string, work: () => Promise<void>): Promise<void> {
  if (!profileDir) return work();
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.start');
  try {
    await work();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    writeFileSync(join(profileDir, `delivery-${label}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
const mx = 'mx.bench.test';
const sender = 'care@clinic.test';
/** SMTP connections to the sink, the same for the baseline pool and the product (`--connections N`, default 10 as in the product). */
const poolSize = args.includes('--connections') ? Number(args[args.indexOf('--connections') + 1]) : 10;
/** Sending threads of the product (`--threads N`; default: the product's default). */
const threads = args.includes('--threads') ? args[args.indexOf('--threads') + 1] : undefined;
const out = (s: string) => process.stdout.write(`${s}\n`);
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

const content = {
  subject: 'Time for your annual visit',
  preheader: 'Book a slot this month',
  html: '<p>Dear [first name],</p><p>your annual wellness visit with [pcp name] is due. <a href="https://clinic.test/book">Book online</a> or call us.</p><p>Riverside Clinic</p>',
  text: 'Dear [first name],\n\nyour annual wellness visit with [pcp name] is due. Book online at https://clinic.test/book or call us.\n\nRiverside Clinic\n\nUnsubscribe: [unsubscribe link]',
};

async function main() {
  const n = Number(args.find((a, i) => /^\d+$/.test(a) && !['--profile', '--connections', '--threads'].includes(args[i - 1]!)) ?? 20_000);
  const ca = createTestCa();
  const leaf = ca.leaf([mx]);
  const dir = mkdtempSync(join(tmpdir(), 'bench-delivery-'));
  writeFileSync(join(dir, 'cert.json'), JSON.stringify({ key: leaf.key, cert: leaf.cert }));
  const sink: ChildProcess = fork(new URL(import.meta.url).pathname, ['--sink', join(dir, 'cert.json')], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => sink.once('message', (m: { port: number }) => resolve(m.port)));
  const sinkState = () => new Promise<{ count: number; cpu: NodeJS.CpuUsage }>((resolve) => {
    sink.once('message', (m: { count: number; cpu: NodeJS.CpuUsage }) => resolve(m));
    sink.send('count');
  });
  const dns = await startDnsServer({ [domain]: { MX: [{ exchange: mx, priority: 10 }] } });
  try {
    await runAll(n, ca, port, dns.address, sinkState);
  } finally {
    sink.kill();
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runAll(n: number, ca: TestCa, port: number, dnsAddress: string, sinkState: () => Promise<{ count: number; cpu: NodeJS.CpuUsage }>) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-delivery-homes-'));
  const dkimKey = testDkimKey().privateKey;

  /** Runs `send`, checks the sink got `n` messages over TLS, and reports msg/s and CPU per message on each side. */
  const measured = async (label: string, send: () => Promise<void>) => {
    const before = await sinkState();
    const m0 = machineTicks();
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await send();
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuMs(process.cpuUsage(cpu0));
    const m1 = machineTicks();
    const loop = performance.eventLoopUtilization(elu0).utilization;
    const after = await sinkState();
    const got = after.count - before.count;
    if (got !== n) throw new Error(`${label}: the sink got ${got}/${n} over TLS`);
    const machine = m0 && m1 ? (m1.busy - m0.busy) / (m1.total - m0.total) : undefined;
    return { rate: n / secs, senderMs: cpu / n, sinkMs: (cpuMs(after.cpu) - cpuMs(before.cpu)) / n, machine, loop };
  };

  // --- baseline: a bare nodemailer pool, messages rendered ahead of time, DKIM with the same KeyObject, same TLS checks.
  const baseline = () => {
    const transporter = nodemailer.createTransport({
      pool: true, maxConnections: poolSize, maxMessages: 1000, host: '127.0.0.1', port, name: 'clinic.test', requireTLS: true,
      tls: { servername: mx, ca: [ca.cert], rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      dkim: { domainName: 'clinic.test', keySelector: 'bench', privateKey: dkimKey },
    });
    const messages = Array.from({ length: n }, (_, i) => ({
      from: `"Riverside Clinic" <${sender}>`, to: `patient${i}@${domain}`, subject: 'Time for your annual visit',
      text: content.text.replace('[first name]', `Given${i}`).replace('[pcp name]', 'Dr. Imaginary Osei').replace('[unsubscribe link]', `https://outreach.clinic.test/u/${randomBytes(32).toString('base64url')}`),
      html: content.html.replace('[first name]', `Given${i}`).replace('[pcp name]', 'Dr. Imaginary Osei'),
    }));
    return measured('baseline', async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: poolSize * 4 }, async () => {
          while (next < messages.length) await transporter.sendMail(messages[next++]!);
        }),
      );
      transporter.close();
    });
  };

  // --- the product: a real campaign through the sending service (the same construction `outreach serve` uses).
  const product = async (kind: 'pglite' | 'postgres') => {
    const home = mkdtempSync(join(dir, `home-${kind}-`));
    const schema = `bench_${randomBytes(5).toString('hex')}`;
    const app = await openApp(
      loadConfig({
        OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'silent', OUTREACH_PRACTICE_NAME: 'Riverside Clinic', OUTREACH_MX_CONNECTIONS: String(poolSize),
        ...(threads !== undefined ? { OUTREACH_SENDER_THREADS: threads } : {}),
        ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
      }),
      { resealInBackground: false },
    );
    try {
      const sending = await createSendingService(app, {
        sender: { address: sender, displayName: 'Riverside Clinic' },
        dns: createDnsLookup([dnsAddress]),
        connectTarget: tableConnectTarget({ [`smtp:${mx}`]: { host: '127.0.0.1', port } }),
        ca: [ca.cert],
        dkim: createDkimSigner({ domainName: 'clinic.test', keySelector: 'bench', privateKey: dkimKey }),
        publicUrl: 'https://outreach.clinic.test',
        bounces: null,
      });
      const admin = { name: 'bench', role: 'admin' };
      for (const role of ['marketer', 'clinician'] as const) await app.users.add({ username: role, role, password: 'bench password 123' }, admin);
      const marketer = (await app.users.login('marketer', 'bench password 123')).session;
      const clinician = (await app.users.login('clinician', 'bench password 123')).session;
      const ids: number[] = [];
      for (let i = 0; i < n; i += 2000) {
        const batch = Array.from({ length: Math.min(2000, n - i) }, (_, k) => patient({ patientId: `b-${i + k}`, state: 'BN', given: phi(`Given${i + k}`), email: phi(`patient${i + k}@${domain}`) }));
        const stored = await app.facts.upsertFacts(batch);
        ids.push(...stored);
        await app.consent.record(stored.map((id) => ({ patientId: id, purpose: 'marketing' as const, channel: 'email' as const, status: 'active' as const, source: 'admin' as const, sourceRef: 'bench', textVersion: 'v1' })), admin);
      }
      await (await app.segmentIndex()).settled();
      const segment = await sending.segments.save({ name: 'bench', definition: { type: 'state', value: 'BN' }, actor: 'marketer' });
      const template = await sending.templates.create({ name: 'bench', content, actor: 'marketer' });
      const c = await sending.campaigns.create(marketer, { name: 'bench', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
      await sending.campaigns.submit(marketer, c.id);
      await sending.campaigns.approve(clinician, c.id);
      await sending.campaigns.schedule(marketer, c.id, new Date(Date.now() - 1000));
      const q0 = performance.now();
      const [run] = await sending.campaigns.runDue();
      const queueSecs = (performance.now() - q0) / 1000;
      if (run?.report?.queued !== n) throw new Error(`expected ${n} queued, got ${run?.report?.queued}`);
      let delivered = 0;
      const r = await measured(kind, () =>
        profiled(kind, async () => {
          delivered = (await sending.dispatcher.drain()).delivered;
        }),
      );
      if (delivered !== n) throw new Error(`${kind}: delivered ${delivered}/${n}`);
      await sending.close();
      return { ...r, queueSecs };
    } finally {
      if (kind === 'postgres') await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app.close();
    }
  };

  const line = (label: string, r: { rate: number; senderMs: number; sinkMs: number; machine: number | undefined; loop: number }, base?: number, extra = '') =>
    out(
      `${label.padEnd(46)} ${r.rate.toFixed(0).padStart(5)} msg/s${base ? `  ratio ${(r.rate / base).toFixed(2)}x` : ''}  CPU/msg: sender ${r.senderMs.toFixed(2)} ms, sink ${r.sinkMs.toFixed(2)} ms` +
        `; sender event loop ${(r.loop * 100).toFixed(0)}% busy${r.machine === undefined ? '' : `, machine ${(r.machine * 100).toFixed(0)}%`}${extra}`,
    );
  out(`delivery bench: ${n} personalised messages (text + HTML), DKIM rsa-sha256 (2048), STARTTLS verified against the test CA, pool ${poolSize}, sink in a child process`);
  const base = await baseline();
  line('baseline  bare nodemailer pool (pre-rendered)', base);
  const a = await product('pglite');
  line('outreach  campaign via outbox on PGlite', a, base.rate, `  (queued in ${a.queueSecs.toFixed(1)} s)`);
  if (await postgresAvailable()) {
    const b = await product('postgres');
    line('outreach  campaign via outbox on PostgreSQL', b, base.rate, `  (queued in ${b.queueSecs.toFixed(1)} s)`);
  }
  out(`target: >= 1000 msg/s on 2 cores and >= 0.7x the baseline · load average ${loadavg()[0]!.toFixed(1)}`);
  rmSync(dir, { recursive: true, force: true });
}

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
    if (m === 'count') process.send!({ count, cpu: process.cpuUsage() });
  });
} else {
  await main();
}
