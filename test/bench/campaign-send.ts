// Campaign send-run benchmark: materialising an approved audience (decrypt facts, consent gate, suppressions, already-sent) and queuing it, against bare outbox inserts of the same members in the same run.
// Usage: node --import tsx test/bench/campaign-send.ts [members] [--postgres]
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../connector/config.js';
import { openApp } from '../../connector/app.js';
import { createSendingService } from '../../connector/sending/sending-service.js';
import { phi } from '../../fhir/phi.js';
import { patient } from '../connector/campaigns/campaign-world.js';
import { postgresUrl } from '../support/postgres.js';

const members = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 10_000);
const usePostgres = process.argv.includes('--postgres');
const home = mkdtempSync(join(tmpdir(), 'outreach-bench-campaign-'));
const schema = `b_${randomBytes(6).toString('hex')}`;
const app = await openApp(
  loadConfig({ OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'silent', ...(usePostgres ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}) }),
  { resealInBackground: false },
);
try {
  const sending = await createSendingService(app, { sender: { address: 'care@clinic.test', displayName: 'Clinic' }, dkim: null });
  const admin = { name: 'bench', role: 'admin' };
  for (const role of ['marketer', 'clinician'] as const) await app.users.add({ username: role, role, password: 'bench password 123' }, admin);
  const marketer = (await app.users.login('marketer', 'bench password 123')).session;
  const clinician = (await app.users.login('clinician', 'bench password 123')).session;
  const ids: number[] = [];
  for (let i = 0; i < members; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, members - i) }, (_, k) => patient({ patientId: `b-${i + k}`, state: 'BN', email: phi(`b-${i + k}@example.test`) }));
    ids.push(...(await app.facts.upsertFacts(batch)));
  }
  // Four in five authorized for marketing; the rest are counted as no-authorization.
  const granted = ids.filter((_, i) => i % 5 !== 0);
  for (const id of granted) await app.consent.grant({ patientId: id, purpose: 'marketing', channel: 'email', source: 'admin', sourceRef: 'bench', textVersion: 'v1' }, admin);
  await (await app.segmentIndex()).settled();
  const segment = await sending.segments.save({ name: 'bench', definition: { type: 'state', value: 'BN' }, actor: 'marketer' });
  const template = await sending.templates.create({ name: 'bench', content: { subject: 'News', preheader: '', html: '', text: 'Hello [first name].' }, actor: 'marketer' });
  const c = await sending.campaigns.create(marketer, { name: 'bench', template: { versionId: template.versionId }, audience: { kind: 'segment', segmentVersionId: segment.versionId }, purpose: 'marketing', deliveryMode: 'tls-required' });
  await sending.campaigns.submit(marketer, c.id);
  await sending.campaigns.approve(clinician, c.id);
  await sending.campaigns.schedule(marketer, c.id, new Date(Date.now() - 1000));

  // Baseline: the same members queued straight into the outbox in batches of 1,000 (no decrypt, no gate).
  const b0 = performance.now();
  for (let i = 0; i < ids.length; i += 1000) {
    await sending.outbox.enqueue(ids.slice(i, i + 1000).map((id) => ({ campaignId: 'baseline', templateVersion: template.versionId, patientId: String(id), purpose: 'marketing', deliveryMode: 'tls-required' as const })));
  }
  const baselineMs = performance.now() - b0;

  const t0 = performance.now();
  const [run] = await sending.campaigns.runDue();
  const runMs = performance.now() - t0;
  if (run?.report?.queued !== granted.length) throw new Error(`expected ${granted.length} queued, got ${run?.report?.queued}`);

  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
  process.stdout.write(
    `campaign send run on ${usePostgres ? 'PostgreSQL' : 'PGlite'}: ${members} members (${granted.length} queued, ${members - granted.length} excluded) in ${(runMs / 1000).toFixed(2)} s = ${rate(members, runMs)} members/s\n` +
      `baseline (bare outbox inserts of ${members}): ${(baselineMs / 1000).toFixed(2)} s = ${rate(members, baselineMs)} rows/s\n` +
      `ratio (send run / baseline throughput): ${(baselineMs / runMs).toFixed(2)}x · load average ${loadavg()[0]!.toFixed(1)}\n`,
  );
  await sending.close();
} finally {
  if (usePostgres) await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await app.close();
  rmSync(home, { recursive: true, force: true });
}
