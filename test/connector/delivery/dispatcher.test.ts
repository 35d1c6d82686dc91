// The dispatcher end to end on loopback sinks: consent at dispatch, revocation of queued mail, opportunistic PHI-free mail, back-off on 4xx, giving up with the reason, DKIM.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDkimSigner } from '../../../connector/delivery/dkim.js';
import { Dispatcher, type ConsentGate } from '../../../connector/delivery/dispatcher.js';
import type { RenderedMessage } from '../../../connector/delivery/mime.js';
import { createOutbox, type Outbox, type OutboxMessage } from '../../../connector/delivery/outbox.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { fail } from '../../../connector/errors.js';
import { createDeliveryEvents } from '../../../connector/delivery/delivery-events.js';
import { createWebhooks } from '../../../connector/delivery/webhooks.js';
import { verifyDkim } from '../../support/dkim-check.js';
import { testDkimKey } from '../../support/test-ca.js';
import { clearDelivery, startDeliveryWorld, type DeliveryWorld } from './world.js';

describe('dispatcher', () => {
  let world: DeliveryWorld;
  let db: Db;
  let outbox: Outbox;
  let clock: Date;
  const consent = new Map<string, { allowed: boolean; version: string; reason?: string }>();
  const gateCalls: Array<[string, string, string]> = [];
  const isAllowed: ConsentGate = async (patientId, purpose, channel) => {
    gateCalls.push([patientId, purpose, channel]);
    return consent.get(patientId) ?? { allowed: true, version: 'auth-1' };
  };
  const render = async (m: OutboxMessage): Promise<RenderedMessage> => {
    const [domain, kind] = m.patientId.split('|');
    return {
      from: 'Clinic <care@sender.outreach.test>',
      to: `patient@${domain}`,
      subject: kind === 'newsletter' ? 'Our spring newsletter' : 'Your lab result',
      text: kind === 'newsletter' ? 'Flu shots are available at every clinic this month.' : 'CANARY-PHI your HbA1c was 9.1%.',
      phiFree: kind === 'newsletter',
    };
  };
  const dispatcher = (extra: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}) =>
    new Dispatcher({
      outbox, router: world.router, transport: world.transport, render, isAllowed, now: () => clock, workerId: 'w1',
      retryDelaysMs: [60_000], ...extra,
    });

  beforeAll(async () => {
    // The transport's back-off runs on the test clock too.
    world = await startDeliveryWorld({ backoffBaseMs: 60_000, now: () => clock.getTime() }, ['valid', 'no-starttls', 'expired']);
    db = await openDb();
  });
  afterAll(async () => {
    await world?.close();
    await db?.close();
  });
  beforeEach(async () => {
    await clearDelivery(db);
    clock = new Date();
    outbox = createOutbox(db, { messageIdDomain: 'sender.outreach.test', now: () => clock });
    consent.clear();
    gateCalls.length = 0;
    for (const s of Object.values(world.sinks)) {
      s.messages.length = 0;
      s.rcptReply = undefined;
    }
  });

  it('checks consent at dispatch and cancels a message whose authorization is gone, with the reason', async () => {
    await outbox.enqueue([
      { campaignId: 'c', templateVersion: 1, patientId: 'valid.test|lab-a', purpose: 'marketing', deliveryMode: 'tls-required' },
      { campaignId: 'c', templateVersion: 1, patientId: 'valid.test|lab-b', purpose: 'marketing', deliveryMode: 'tls-required' },
    ]);
    // Revoked after enqueue, before dispatch.
    consent.set('valid.test|lab-b', { allowed: false, version: 'auth-2', reason: 'marketing authorization revoked' });
    const outcomes: string[] = [];
    const s = await dispatcher({ onOutcome: (m, c) => void outcomes.push(`${m.patientId}:${c.state}`) }).drain();
    expect(outcomes.sort()).toEqual(['valid.test|lab-a:delivered', 'valid.test|lab-b:cancelled']);
    expect(s).toMatchObject({ delivered: 1, cancelled: 1 });
    expect(gateCalls).toEqual(expect.arrayContaining([['valid.test|lab-b', 'marketing', 'email']]));
    expect(await outbox.byIdempotencyKey('c:1:valid.test|lab-b')).toMatchObject({ state: 'cancelled', cancelReason: 'consent: marketing authorization revoked', consentVersion: 'auth-2' });
    expect(world.sinks.valid.messages).toHaveLength(1);
  });

  it('stops queued marketing for a patient at once when cancelQueued runs (unsubscribe)', async () => {
    await outbox.enqueue(['a', 'b', 'c'].map((c) => ({ campaignId: c, templateVersion: 1, patientId: 'valid.test|lab', purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    expect(await outbox.cancelQueued({ patientId: 'valid.test|lab', purpose: 'marketing' }, 'unsubscribe')).toBe(3);
    expect((await dispatcher().drain()).claimed).toBe(0);
    expect(world.sinks.valid.messages).toHaveLength(0);
  });

  it('sends PHI-free content opportunistically in tls-or-escrow when the MX has no STARTTLS, and never PHI', async () => {
    await outbox.enqueue([
      { campaignId: 'c', templateVersion: 1, patientId: 'no-starttls.test|newsletter', purpose: 'marketing', deliveryMode: 'tls-or-escrow' },
      { campaignId: 'c', templateVersion: 1, patientId: 'no-starttls.test|lab', purpose: 'marketing', deliveryMode: 'tls-required' },
    ]);
    await dispatcher().drain();
    const got = world.sinks['no-starttls'].messages;
    expect(got).toHaveLength(1);
    expect(got[0]!.secure).toBe(false);
    expect(got[0]!.raw.toString()).toContain('Flu shots');
    const row = (await outbox.byIdempotencyKey('c:1:no-starttls.test|newsletter'))!;
    expect(row).toMatchObject({ state: 'delivered', deliveredAs: 'opportunistic' });
    expect(row.tlsEvidence).toMatchObject({ route: 'opportunistic', verified: false, protocol: null });
    expect((await outbox.byIdempotencyKey('c:1:no-starttls.test|lab'))!.state).toBe('held');
  });

  it('holds a tls-required message, retries it, and fails it with the reason after its last attempt', async () => {
    await outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'expired.test|lab', purpose: 'treatment', deliveryMode: 'tls-required', maxAttempts: 3 }]);
    const d = dispatcher();
    const states: string[] = [];
    for (let i = 0; i < 3; i++) {
      await d.drain();
      states.push((await outbox.byIdempotencyKey('c:1:expired.test|lab'))!.state);
      clock = new Date(clock.getTime() + 61_000);
    }
    expect(states).toEqual(['held', 'held', 'failed']);
    const row = (await outbox.byIdempotencyKey('c:1:expired.test|lab'))!;
    expect(row.lastError).toMatch(/^TLS_REQUIRED_UNAVAILABLE: .*cert-expired/);
    expect(row.attempts).toBe(3);
    expect(world.sinks.expired.messages).toHaveLength(0);
  });

  it('backs a domain off on 4xx and retries after the back-off, with the SMTP response recorded', async () => {
    world.sinks.valid.rcptReply = () => ({ code: 451, message: 'Greylisted, try later' });
    await outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'valid.test|lab', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await dispatcher().drain();
    const deferred = (await outbox.byIdempotencyKey('c:1:valid.test|lab'))!;
    expect(deferred.state).toBe('queued');
    expect(deferred.smtpResponse).toContain('451');
    expect(world.transport.backoffUntil('valid.test')).toBe(clock.getTime() + 60_000);
    world.sinks.valid.rcptReply = undefined;
    // Another message to the same domain waits for the back-off without spending an attempt.
    await outbox.enqueue([{ campaignId: 'c2', templateVersion: 1, patientId: 'valid.test|lab', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    clock = new Date(clock.getTime() + 1000);
    await dispatcher().drain();
    expect(await outbox.byIdempotencyKey('c2:1:valid.test|lab')).toMatchObject({ state: 'queued', attempts: 0, lastError: 'domain backed off after 4xx' });
    expect(world.sinks.valid.messages).toHaveLength(0);
    clock = new Date(deferred.nextAttemptAt.getTime() + 1);
    await dispatcher().drain();
    expect(await outbox.byIdempotencyKey('c:1:valid.test|lab')).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(await outbox.byIdempotencyKey('c2:1:valid.test|lab')).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(world.sinks.valid.messages).toHaveLength(2);
    expect(world.transport.backoffUntil('valid.test')).toBe(0);
  });

  it('rejects permanently on 5xx and records the response, with the address the server quoted taken out', async () => {
    // Servers quote the recipient; an address is PHI and must not reach the outbox, the attempts or the API.
    world.sinks.valid.rcptReply = (to) => ({ code: 550, message: `5.1.1 <${to}>: Recipient address rejected; see also other.person@valid.test` });
    await outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'valid.test|lab', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await dispatcher().drain();
    const row = (await outbox.byIdempotencyKey('c:1:valid.test|lab'))!;
    expect(row).toMatchObject({ state: 'failed', lastError: 'SMTP_REJECTED: 550' });
    expect(row.smtpResponse).toMatch(/^550 5\.1\.1 <\[recipient\]>: Recipient address rejected; see also \[address\]$/);
    const stored = JSON.stringify([row, await outbox.attempts(row.id)]);
    expect(stored).not.toContain('patient@valid.test');
    expect(stored).not.toContain('other.person');
  });

  it('signs with DKIM (RSA-2048 KeyObject), keeps the stable Message-ID and adds one-click unsubscribe headers', async () => {
    const key = testDkimKey();
    await outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'valid.test|newsletter', purpose: 'marketing', deliveryMode: 'tls-required' }]);
    await dispatcher({
      dkim: createDkimSigner({ domainName: 'sender.outreach.test', keySelector: 's2026', privateKey: key.privateKey }),
      unsubscribeUrl: (m) => `https://outreach.test/u/${m.id}-signed`,
    }).drain();
    const [msg] = world.sinks.valid.messages;
    const raw = msg!.raw.toString('utf8');
    const { d, s } = verifyDkim(raw, key.publicKey);
    expect({ d, s }).toEqual({ d: 'sender.outreach.test', s: 's2026' });
    const row = (await outbox.byIdempotencyKey('c:1:valid.test|newsletter'))!;
    expect(raw).toContain(`Message-ID: ${row.messageId}`);
    expect(raw).toMatch(/List-Unsubscribe: <https:\/\/outreach\.test\/u\/\d+-signed>/);
    expect(raw).toContain('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
  });

  it('runs in the background: a poke after an enqueue sends without waiting for the poll interval', async () => {
    const d = dispatcher({ now: () => new Date() });
    d.start(60_000);
    try {
      await outbox.enqueue([{ campaignId: 'bg', templateVersion: 1, patientId: 'valid.test|lab', purpose: 'treatment', deliveryMode: 'tls-required' }]);
      d.poke();
      await world.sinks.valid.waitFor(1, 20_000);
    } finally {
      await d.stop();
    }
    expect(await outbox.byIdempotencyKey('bg:1:valid.test|lab')).toMatchObject({ state: 'delivered' });
  });

  it('renews the lease of a message in flight: a send longer than the lease is never claimed by another worker', async () => {
    // Real time here: the lease has to run out on the wall clock while the first worker is still busy.
    const live = createOutbox(db, { messageIdDomain: 'sender.outreach.test' });
    let started!: () => void;
    const inRender = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const slow = new Dispatcher({
      outbox: live, router: world.router, transport: world.transport, isAllowed, workerId: 'slow', leaseMs: 300,
      render: async (m) => {
        started();
        await released;
        return render(m);
      },
    });
    const other = new Dispatcher({ outbox: live, router: world.router, transport: world.transport, render, isAllowed, workerId: 'other', leaseMs: 300 });
    await live.enqueue([{ campaignId: 'long', templateVersion: 1, patientId: 'valid.test|lab', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    const run = slow.runOnce();
    await inRender;
    const firstLease = (await live.byIdempotencyKey('long:1:valid.test|lab'))!.leaseUntil!.getTime();
    // Bounded: poll the row until the first lease end has passed on the wall clock and the lease was pushed beyond it.
    let row = await live.byIdempotencyKey('long:1:valid.test|lab');
    for (let i = 0; i < 500 && !(Date.now() > firstLease + 150 && row!.leaseUntil!.getTime() > Date.now()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      row = await live.byIdempotencyKey('long:1:valid.test|lab');
    }
    expect(Date.now()).toBeGreaterThan(firstLease + 150);
    expect(row).toMatchObject({ state: 'sending', leaseOwner: 'slow', attempts: 1 });
    expect(row!.leaseUntil!.getTime()).toBeGreaterThan(Date.now());
    expect(await other.runOnce()).toMatchObject({ claimed: 0 });
    release();
    expect(await run).toMatchObject({ claimed: 1, delivered: 1 });
    expect(await live.byIdempotencyKey('long:1:valid.test|lab')).toMatchObject({ state: 'delivered', attempts: 1, possibleDuplicate: false, leaseOwner: null });
    expect(world.sinks.valid.messages).toHaveLength(1);
    expect((await live.attempts((await live.byIdempotencyKey('long:1:valid.test|lab'))!.id)).map((a) => a.worker)).toEqual(['slow']);
  });

  it('prepares claimed mail a chunk at a time: one consent look-up, one render and one suppression look-up per chunk', async () => {
    const n = 25;
    await outbox.enqueue(Array.from({ length: n }, (_, i) => ({ campaignId: 'chunks', templateVersion: 1, patientId: `valid.test|news-${i}`, purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    consent.set('valid.test|news-3', { allowed: false, version: 'auth-9', reason: 'marketing authorization revoked' });
    const calls = { gate: [] as number[], render: [] as number[], suppressions: [] as number[] };
    const s = await dispatcher({
      prepareSize: 10,
      isAllowedMany: async (requests, at) => {
        calls.gate.push(requests.length);
        return Promise.all(requests.map((r) => isAllowed(r.patientId, r.purpose, r.channel, at)));
      },
      renderMany: async (messages) => {
        calls.render.push(messages.length);
        return Promise.all(messages.map(async (m) => (m.patientId.endsWith('-7') ? { error: new Error('facts unreadable') } : { ok: await render(m) })));
      },
      suppressions: {
        reasonFor: async () => 'hard-bounce (never asked one by one)',
        reasonsFor: async (recipients) => {
          calls.suppressions.push(recipients.length);
          return recipients.map((r) => (r.patientId.endsWith('-5') ? 'complaint' : undefined));
        },
      },
    }).drain();
    expect(calls.gate).toEqual([10, 10, 5]);
    // The denied patient is never rendered; the unrenderable one never reaches the suppression look-up.
    expect(calls.render).toEqual([9, 10, 5]);
    expect(calls.suppressions).toEqual([8, 10, 5]);
    expect(s).toMatchObject({ claimed: n, delivered: n - 3, cancelled: 2, retried: 1 });
    expect(await outbox.byIdempotencyKey('chunks:1:valid.test|news-3')).toMatchObject({ state: 'cancelled', cancelReason: 'consent: marketing authorization revoked' });
    expect(await outbox.byIdempotencyKey('chunks:1:valid.test|news-5')).toMatchObject({ state: 'cancelled', cancelReason: 'suppressed: complaint' });
    expect(await outbox.byIdempotencyKey('chunks:1:valid.test|news-7')).toMatchObject({ state: 'queued', lastError: 'INTERNAL: dispatch error' });
    expect(world.sinks.valid.messages).toHaveLength(n - 3);
  });

  it('takes a consent decision again, alone, when it is older than maxGateAgeMs at send time, so a revocation in between stops the message', async () => {
    await outbox.enqueue(['a', 'b'].map((k) => ({ campaignId: 'stale', templateVersion: 1, patientId: `valid.test|news-${k}`, purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    let prepared = 0;
    const d = dispatcher({
      maxGateAgeMs: 1000,
      isAllowedMany: async (requests) => {
        prepared += requests.length;
        const answers = requests.map(() => ({ allowed: true, version: 'auth-1' }));
        // The patient revokes, and the wall clock moves on, after the chunk was gated and before it is sent.
        consent.set('valid.test|news-b', { allowed: false, version: 'auth-2', reason: 'marketing authorization revoked' });
        clock = new Date(clock.getTime() + 5000);
        return answers;
      },
    });
    expect(await d.drain()).toMatchObject({ delivered: 1, cancelled: 1 });
    expect(prepared).toBe(2);
    expect(gateCalls.map(([p]) => p).sort()).toEqual(['valid.test|news-a', 'valid.test|news-b']);
    expect(await outbox.byIdempotencyKey('stale:1:valid.test|news-b')).toMatchObject({ state: 'cancelled', consentVersion: 'auth-2' });
  });

  it('keeps a chunk whose look-ups failed: its messages go back to the queue with the reason, none is lost', async () => {
    await outbox.enqueue(['a', 'b', 'c'].map((k) => ({ campaignId: 'down', templateVersion: 1, patientId: `valid.test|news-${k}`, purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    const s = await dispatcher({
      isAllowedMany: async () => {
        throw fail('STORE_UNAVAILABLE', 'the consent registry is not reachable');
      },
    }).drain();
    expect(s).toMatchObject({ claimed: 3, retried: 3, delivered: 0 });
    for (const k of ['a', 'b', 'c']) {
      expect(await outbox.byIdempotencyKey(`down:1:valid.test|news-${k}`)).toMatchObject({ state: 'queued', lastError: 'STORE_UNAVAILABLE: the consent registry is not reachable' });
    }
    // Later, with the registry back, they go.
    clock = new Date(clock.getTime() + 61_000);
    expect(await dispatcher().drain()).toMatchObject({ delivered: 3 });
  });

  it('queues the webhook event of each outcome in the transaction that records the outcome: both are kept, or neither', async () => {
    const webhooks = createWebhooks({ db, endpoints: ['https://crm.clinic.test/hooks'], secret: 'a webhook secret of enough length', post: async () => 200 });
    const events = createDeliveryEvents({ db, webhooks });
    await outbox.enqueue(['a', 'b', 'c'].map((k) => ({ campaignId: 'hooks', templateVersion: 1, patientId: `valid.test|news-${k}`, purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    consent.set('valid.test|news-c', { allowed: false, version: 'auth-2', reason: 'marketing authorization revoked' });
    expect(await dispatcher({ recordWithOutcomes: events.record }).drain()).toMatchObject({ delivered: 2, cancelled: 1 });
    // In the store as soon as drain() returns: no listener, no settle step that a crash could skip.
    const queued = await db.query<{ event_type: string; event_id: string }>('SELECT event_type, event_id FROM webhook_deliveries ORDER BY event_id');
    expect(queued.map((r) => r.event_type).sort()).toEqual(['message.cancelled', 'message.delivered', 'message.delivered']);
    expect(queued.every((r) => /^outcome:\d+:1:(delivered|cancelled)$/.test(r.event_id))).toBe(true);

    // An event write that fails takes the outcome with it: the message stays claimed, to be retried when its lease ends.
    await outbox.enqueue([{ campaignId: 'hooks', templateVersion: 1, patientId: 'valid.test|news-d', purpose: 'marketing', deliveryMode: 'tls-required' }]);
    const [claimed] = await outbox.claim('w-rollback', 10, 60_000);
    await expect(
      outbox.finishMany('w-rollback', [{ message: claimed!, completion: { state: 'failed', reason: 'SMTP_REJECTED: 550' } }], async (tx, recorded) => {
        await events.record(tx, recorded);
        throw new Error('the event store is full');
      }),
    ).rejects.toThrow('the event store is full');
    expect(await outbox.byIdempotencyKey('hooks:1:valid.test|news-d')).toMatchObject({ state: 'sending', leaseOwner: 'w-rollback' });
    expect(await db.query('SELECT 1 FROM webhook_deliveries WHERE event_id LIKE $1', [`outcome:${claimed!.id}:%`])).toHaveLength(0);
  });

  it('survives a store failure while recording: those messages go again when their leases end (flagged), and later outcomes are recorded', async () => {
    let failNext = true;
    const flaky: Outbox = {
      ...outbox,
      finishMany: async (worker, items, alongside) => {
        if (failNext) {
          failNext = false;
          throw fail('STORE_UNAVAILABLE', 'the database connection was lost');
        }
        return outbox.finishMany(worker, items, alongside);
      },
    };
    await outbox.enqueue(['a', 'b'].map((k) => ({ campaignId: 'flaky', templateVersion: 1, patientId: `valid.test|news-${k}`, purpose: 'marketing', deliveryMode: 'tls-required' as const })));
    const d = dispatcher({ outbox: flaky, leaseMs: 60_000 });
    expect(await d.drain()).toMatchObject({ claimed: 2, delivered: 2 });
    // Sent, but the outcome was not kept: still claimed.
    for (const k of ['a', 'b']) expect(await outbox.byIdempotencyKey(`flaky:1:valid.test|news-${k}`)).toMatchObject({ state: 'sending' });
    // The same dispatcher records the next outcomes: one failure did not wedge it.
    await outbox.enqueue([{ campaignId: 'flaky', templateVersion: 1, patientId: 'valid.test|news-c', purpose: 'marketing', deliveryMode: 'tls-required' }]);
    expect(await d.drain()).toMatchObject({ claimed: 1, delivered: 1 });
    expect(await outbox.byIdempotencyKey('flaky:1:valid.test|news-c')).toMatchObject({ state: 'delivered' });
    // After the leases end, the unrecorded two go again and are flagged as possible duplicates.
    clock = new Date(clock.getTime() + 61_000);
    expect(await d.drain()).toMatchObject({ claimed: 2, delivered: 2 });
    for (const k of ['a', 'b']) expect(await outbox.byIdempotencyKey(`flaky:1:valid.test|news-${k}`)).toMatchObject({ state: 'delivered', possibleDuplicate: true, attempts: 2 });
    expect(world.sinks.valid.messages).toHaveLength(5);
  });

  it('refuses a DKIM key that is not RSA-2048', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => createDkimSigner({ domainName: 'a.test', keySelector: 's', privateKey: small })).toThrow(/2048/);
    expect(() => createDkimSigner({ domainName: 'a.test', keySelector: 's', privateKey: ec })).toThrow(/RSA/);
  });
});
