// The durable outbox on PGlite and PostgreSQL: idempotent enqueue, stable Message-IDs, leases and their expiry, SKIP LOCKED between workers, cancel.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOutbox, messageIdFor, type EnqueueInput, type Outbox } from '../../../connector/delivery/outbox.js';
import type { Db } from '../../../connector/store/db.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { clearDelivery } from './world.js';

const item = (patientId: string, over: Partial<EnqueueInput> = {}): EnqueueInput => ({
  campaignId: 'c1', templateVersion: 2, patientId, purpose: 'marketing', deliveryMode: 'tls-or-escrow', ...over,
});

describe.each(storeKinds)('outbox on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let clock: Date;
  let outbox: Outbox;
  const tick = (ms: number) => (clock = new Date(clock.getTime() + ms));

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await clearDelivery(db);
    clock = new Date('2026-03-01T10:00:00Z');
    outbox = createOutbox(db, { messageIdDomain: 'mail.clinic.test', now: () => clock });
  });

  it('queues each patient of a campaign once, however often the campaign is enqueued', async () => {
    expect(await outbox.enqueue([item('p1'), item('p2')])).toBe(2);
    expect(await outbox.enqueue([item('p1'), item('p2'), item('p3')])).toBe(1);
    const row = await outbox.byIdempotencyKey('c1:2:p1');
    expect(row).toMatchObject({ state: 'queued', attempts: 0, campaignId: 'c1', patientId: 'p1', deliveryMode: 'tls-or-escrow' });
    expect(row!.messageId).toBe(messageIdFor('c1:2:p1', 'mail.clinic.test'));
    expect(row!.messageId).toMatch(/^<[0-9a-f]{32}@mail\.clinic\.test>$/);
  });

  it('stores no message content: the row holds ids, state and evidence only', async () => {
    await outbox.enqueue([item('p1')]);
    const cols = await db.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'delivery_outbox' AND table_schema = current_schema()`,
    );
    const names = cols.map((c) => c.column_name);
    for (const forbidden of ['body', 'html', 'text', 'subject', 'email', 'recipient', 'to_address']) expect(names).not.toContain(forbidden);
  });

  it('renews only the leases a worker still holds, keeping the claim time, so a renewed message is not claimed again', async () => {
    await outbox.enqueue([item('p1'), item('p2')]);
    const claimed = await outbox.claim('worker-a', 10, 30_000);
    const ids = claimed.map((m) => m.id);
    expect(await outbox.renewLeases('worker-b', ids, 30_000)).toEqual([]);
    await outbox.finish(claimed[1]!, 'worker-a', { state: 'failed', reason: 'SMTP_REJECTED: 550' });
    tick(20_000);
    expect(await outbox.renewLeases('worker-a', ids, 30_000)).toEqual([ids[0]]);
    tick(20_000);
    // 40 s after the claim: past the first lease, inside the renewed one.
    expect(await outbox.claim('worker-b', 10, 30_000)).toEqual([]);
    const row = (await outbox.get(ids[0]!))!;
    expect(row).toMatchObject({ state: 'sending', leaseOwner: 'worker-a', attempts: 1 });
    expect(row.leaseUntil!.getTime()).toBe(new Date('2026-03-01T10:00:50Z').getTime());
    expect(row.claimedAt.getTime()).toBe(new Date('2026-03-01T10:00:00Z').getTime());
  });

  it('claims due messages under a lease and hides them from other workers until it expires', async () => {
    await outbox.enqueue([item('p1'), item('p2'), item('p3', { notBefore: new Date(clock.getTime() + 60_000) })]);
    const a = await outbox.claim('worker-a', 10, 30_000);
    expect(a.map((m) => m.patientId)).toEqual(['p1', 'p2']);
    expect(a[0]).toMatchObject({ state: 'sending', attempts: 1, leaseOwner: 'worker-a' });
    expect(await outbox.claim('worker-b', 10, 30_000)).toEqual([]);
    // The lease of worker-a runs out (it crashed); p3 has also come due.
    tick(61_000);
    const b = await outbox.claim('worker-b', 10, 30_000);
    expect(b.map((m) => m.patientId)).toEqual(['p1', 'p2', 'p3']);
    const retried = b.find((m) => m.patientId === 'p1')!;
    expect(retried).toMatchObject({ attempts: 2, leaseOwner: 'worker-b', possibleDuplicate: true });
    expect(b.find((m) => m.patientId === 'p3')!.possibleDuplicate).toBe(false);
    // worker-a wakes up and tries to record its old attempt: its lease is gone, nothing changes.
    expect(await outbox.finish(a[0]!, 'worker-a', { state: 'failed', reason: 'late' })).toBe(false);
    expect((await outbox.get(retried.id))!.state).toBe('sending');
    const attempts = await outbox.attempts(retried.id);
    // The late attempt is on record as such; worker-b's attempt gets its row when it ends.
    expect(attempts.map((x) => [x.attempt, x.worker, x.outcome])).toEqual([[1, 'worker-a', 'failed (lease lost)']]);
  });

  it('lets two workers claim concurrently without ever sharing a message (SKIP LOCKED)', async () => {
    await outbox.enqueue(Array.from({ length: 60 }, (_, i) => item(`p${i}`)));
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) => outbox.claim(i % 2 ? 'worker-b' : 'worker-a', 15, 30_000)),
    );
    const ids = claims.flat().map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(60);
    expect(await outbox.claim('worker-c', 10, 30_000)).toEqual([]);
  });

  it('finishes with evidence, and retries a queued message only when it falls due', async () => {
    await outbox.enqueue([item('p1'), item('p2')]);
    const [m1, m2] = await outbox.claim('w', 10, 30_000);
    const evidence = {
      mx: 'mx.example.test', route: 'verified' as const, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', certSubject: 'CN=mx.example.test',
      certIssuer: 'CN=CA', certFingerprint256: 'AA', certValidTo: 'x', verified: true, mtaSts: { status: 'none' as const }, dane: { status: 'none' as const },
    };
    expect(await outbox.finish(m1!, 'w', { state: 'delivered', deliveredAs: 'message', consentVersion: 'auth-7', recipientDomain: 'example.test', evidence, smtpResponse: '250 2.0.0 queued as X' })).toBe(true);
    expect(await outbox.finish(m2!, 'w', { state: 'queued', nextAttemptAt: new Date(clock.getTime() + 300_000), reason: '451 4.7.1 try later' })).toBe(true);
    const done = (await outbox.get(m1!.id))!;
    expect(done).toMatchObject({ state: 'delivered', consentVersion: 'auth-7', smtpResponse: '250 2.0.0 queued as X', leaseOwner: null, deliveredAs: 'message' });
    expect(done.tlsEvidence).toEqual(evidence);
    expect(done.finishedAt).not.toBeNull();
    expect(await outbox.claim('w', 10, 30_000)).toEqual([]);
    expect((await outbox.nextDue())!.getTime()).toBe(clock.getTime() + 300_000);
    tick(300_000);
    const again = await outbox.claim('w', 10, 30_000);
    expect(again.map((m) => [m.patientId, m.attempts])).toEqual([['p2', 2]]);
    expect(await outbox.campaignStates('c1')).toEqual({ delivered: 1, sending: 1 });
  });

  it('cancels queued and held messages of a patient, leaving other patients and finished messages alone', async () => {
    await outbox.enqueue([item('p1'), item('p1', { campaignId: 'c2', purpose: 'appointment' }), item('p2'), item('p1', { campaignId: 'c3' })]);
    const [first] = await outbox.claim('w', 1, 30_000);
    await outbox.finish(first!, 'w', { state: 'delivered', deliveredAs: 'message', consentVersion: null, recipientDomain: 'x.test', evidence: undefined as never, smtpResponse: '250' });
    expect(await outbox.cancelQueued({ patientId: 'p1', purpose: 'marketing' }, 'unsubscribed')).toBe(1);
    expect((await outbox.byIdempotencyKey('c3:2:p1'))!).toMatchObject({ state: 'cancelled', cancelReason: 'unsubscribed' });
    expect((await outbox.byIdempotencyKey('c2:2:p1'))!.state).toBe('queued');
    expect((await outbox.byIdempotencyKey('c1:2:p2'))!.state).toBe('queued');
    expect((await outbox.byIdempotencyKey('c1:2:p1'))!.state).toBe('delivered');
    expect(await outbox.cancelQueued({ campaignId: 'c2' }, 'approval withdrawn')).toBe(1);
    await expect(outbox.cancelQueued({}, 'everything')).rejects.toThrow(/patient or a campaign/);
  });

  it('refuses an unknown delivery mode', async () => {
    await expect(outbox.enqueue([item('p1', { deliveryMode: 'plaintext' as never })])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});
