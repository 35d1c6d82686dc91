// API benchmark: autocannon on loopback against GET /patients/lookup?crmId= at a fixed 1,000 req/s, against a bare fastify route in the same run.
// Usage: node --import tsx test/bench/api-lookup.ts [seconds] [--postgres]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { loadConfig } from '../../connector/config.js';
import { openApp } from '../../connector/app.js';
import { startApiServer } from '../../connector/api/server.js';
import { syntheticFacts } from '../connector/store/synthetic-facts.js';

const RATE = 1000;
const PATIENTS = 2000;
const usePostgres = process.argv.includes('--postgres');
const askedSeconds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 30);
// On a machine already busy with other work, a shorter run still shows the tail; the report says which was used.
const load = loadavg()[0]!;
const busy = load > availableParallelism() * 2;
const seconds = busy && !process.argv.slice(2).some((a) => /^\d+$/.test(a)) ? 15 : askedSeconds;

interface Figures {
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
  rps: number;
  /** CPU of this process (server, store when embedded, and the load generator) per answered request: less sensitive to a busy machine than latency. */
  cpuMsPerRequest: number;
}

async function hammer(url: string, headers: Record<string, string>, paths: string[]): Promise<Figures> {
  let i = 0;
  const cpu = process.cpuUsage();
  const result = await autocannon({
    url,
    connections: 32,
    overallRate: RATE,
    duration: seconds,
    headers,
    requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[i++ % paths.length] }) }],
  } as unknown as autocannon.Options);
  const used = process.cpuUsage(cpu);
  return {
    cpuMsPerRequest: (used.user + used.system) / 1000 / Math.max(result.requests.total, 1),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    requests: result.requests.total,
    rps: result.requests.average,
  };
}

const line = (label: string, f: Figures) =>
  `${label.padEnd(34)} p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   ${f.rps.toFixed(0).padStart(5)} req/s   ${f.requests} requests   errors ${f.errors}   non-2xx ${f.non2xx}   cpu ${f.cpuMsPerRequest.toFixed(2)} ms/request`;

const home = mkdtempSync(join(tmpdir(), 'outreach-bench-api-'));
const schema = `bench_${randomBytes(4).toString('hex')}`;
const config = loadConfig({
  OUTREACH_HOME: home,
  OUTREACH_LOG_LEVEL: 'silent',
  ...(usePostgres ? { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', DATABASE_SCHEMA: schema } : {}),
});
const app = await openApp(config, { resealInBackground: false });
try {
  process.stdout.write(`store ${app.db.kind}; ${PATIENTS} patients; ${RATE} req/s for ${seconds} s${busy ? ` (machine busy: load ${load.toFixed(1)} on ${availableParallelism()} cores${seconds < askedSeconds ? ', run shortened from 30 s' : ''})` : ''}\n`);
  const ids = await app.facts.upsertFacts(Array.from({ length: PATIENTS }, (_, i) => syntheticFacts(i + 1, 'bench-ehr')));
  const crmIds = ids.map((_, i) => `003${String(i + 1).padStart(12, '0')}AAA`);
  for (let i = 0; i < ids.length; i++) await app.facts.setCrmId(ids[i]!, crmIds[i]!);
  await app.users.add({ username: 'bench-marketer', role: 'marketer', password: 'bench password 2026' }, { name: 'bench', role: 'admin' });

  // Baseline: a bare fastify route returning a constant, on the same loopback and the same load generator.
  const bare = Fastify({ logger: false });
  bare.get('/constant', async () => ({ ok: true }));
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}`;
  const baseline = await hammer(bareUrl, {}, ['/constant']);
  await bare.close();

  const { server, url } = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  const login = await fetch(`${url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench-marketer', password: 'bench password 2026' }),
  });
  const { token } = (await login.json()) as { token: string };
  const check = await fetch(`${url}/api/v1/patients/lookup?crmId=${crmIds[0]}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await check.json()) as { found?: boolean };
  if (!body.found) throw new Error('the lookup does not find the seeded patient');
  const lookup = await hammer(url, { authorization: `Bearer ${token}` }, crmIds.map((c) => `/api/v1/patients/lookup?crmId=${c}`));
  await server.close();

  const [auditRows] = await app.db.query<{ n: string }>("SELECT count(*)::text AS n FROM audit_log WHERE action = 'patient.lookup'");
  process.stdout.write(`${line('baseline: bare fastify constant', baseline)}\n`);
  process.stdout.write(`${line('GET /patients/lookup?crmId=', lookup)}\n`);
  process.stdout.write(`each lookup: session check, blind-index query, consent rows, last campaign, one audit row (${auditRows!.n} written)\n`);
  process.stdout.write(
    `ratio lookup/baseline: p50 ${(lookup.p50 / Math.max(baseline.p50, 1)).toFixed(1)}x, p99 ${(lookup.p99 / Math.max(baseline.p99, 1)).toFixed(1)}x, CPU per request ${(lookup.cpuMsPerRequest / Math.max(baseline.cpuMsPerRequest, 0.001)).toFixed(1)}x\n`,
  );
  const ok = lookup.p99 <= 50 && lookup.errors === 0 && lookup.non2xx === 0;
  process.stdout.write(`target p99 <= 50 ms and 0 errors: ${ok ? 'MET' : 'NOT MET'}\n`);
} finally {
  if (usePostgres) await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await app.close();
  rmSync(home, { recursive: true, force: true });
}
