// Crash safety: a child process sending 2,000 messages is killed with SIGKILL at least five times at random points, then resumed; every message ends delivered, and every duplicate is one the outbox flagged.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutbox } from '../../../connector/delivery/outbox.js';
import { openDb } from '../../../connector/store/db.js';
import { createTestCa } from '../../support/test-ca.js';
import { hasPostgres, postgresUrl } from '../../support/postgres.js';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.js';

const COUNT = 2000;
const KILLS = 5;

describe('crash and resume', () => {
  let sink: SmtpSink;
  let ca: ReturnType<typeof createTestCa>;
  const dir = mkdtempSync(join(tmpdir(), 'crash-'));
  const schema = `crash_${process.pid}`;
  // PostgreSQL where reachable (a fresh server process survives any client kill); the embedded store otherwise.
  const store = hasPostgres ? { databaseUrl: postgresUrl, schema } : { dataDir: join(dir, 'pglite') };

  beforeAll(async () => {
    ca = createTestCa();
    const leaf = ca.leaf(['mx.crash.test']);
    sink = await startSmtpSink({ mode: 'starttls', key: leaf.key, cert: leaf.cert });
  });
  afterAll(async () => {
    await sink?.close();
    if (hasPostgres) {
      const db = await openDb({ databaseUrl: postgresUrl, schema });
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (clockSkewMs: number, killAfter?: number) =>
    new Promise<{ killed: boolean; summary?: unknown }>((resolve, reject) => {
      const child = fork(new URL('./crash-sender.ts', import.meta.url).pathname, [JSON.stringify({ port: sink.port, ca: ca.cert, count: COUNT, clockSkewMs, ...store })], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      let summary: unknown;
      child.on('message', (m: { ready?: boolean; done?: boolean; summary?: unknown }) => {
        if (m.done) summary = m.summary;
        if (m.ready && killAfter !== undefined) {
          const target = sink.messages.length + killAfter;
          void sink.waitFor(target, 60_000).then(() => child.kill('SIGKILL'), () => child.kill('SIGKILL'));
        }
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve({ killed: true }) : code === 0 ? resolve({ killed: false, summary }) : reject(new Error(`child exited ${code}`))));
    });

  it('delivers every message after repeated SIGKILLs, with duplicates only where flagged', async () => {
    let kills = 0;
    let skew = 0;
    for (let i = 0; i < KILLS; i++) {
      const r = await run(skew, 100 + Math.floor(Math.random() * 200));
      if (r.killed) kills++;
      // The next run's clock is past every lease the killed run held.
      skew += 61_000;
    }
    expect(kills).toBe(KILLS);
    const final = await run(skew);
    expect(final.killed).toBe(false);

    const db = await openDb(hasPostgres ? { databaseUrl: postgresUrl, schema } : { dataDir: join(dir, 'pglite') });
    try {
      const outbox = createOutbox(db, { messageIdDomain: 'crash.outreach.test' });
      expect(await outbox.campaignStates('crash')).toEqual({ delivered: COUNT });
      const rows = await db.query<{ message_id: string; possible_duplicate: boolean }>('SELECT message_id, possible_duplicate FROM delivery_outbox');
      const flagged = new Set(rows.filter((r) => r.possible_duplicate).map((r) => r.message_id));
      const seen = new Map<string, number>();
      for (const m of sink.messages) {
        const id = /^Message-ID: (<[^>]+>)/im.exec(m.raw.toString('latin1'))![1]!;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      // Every message reached the server, over verified TLS.
      expect(rows.every((r) => seen.has(r.message_id))).toBe(true);
      expect(sink.messages.every((m) => m.secure)).toBe(true);
      // A second copy exists only for a message that was in flight at a kill, and the outbox says so.
      const duplicates = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      expect(duplicates.filter((id) => !flagged.has(id))).toEqual([]);
      expect(sink.messages.length).toBe(COUNT + [...seen.values()].reduce((a, n) => a + n - 1, 0));
      // Bounded by what can be in flight or unrecorded per kill (concurrency 8 + one flush group of 50).
      expect(duplicates.length).toBeLessThanOrEqual(KILLS * 58);
    } finally {
      await db.close();
    }
  }, 120_000);
});
