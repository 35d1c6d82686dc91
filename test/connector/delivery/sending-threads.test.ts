// Sending threads: messages signed and sent on worker threads arrive over verified TLS with a DKIM signature that verifies; failures come back as outcomes, never as lost messages.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWireMessage } from '../../../connector/delivery/mime.js';
import { createThreadedConnections } from '../../../connector/delivery/sending-threads.js';
import { createTransport, type SendRequest, type Transport } from '../../../connector/delivery/transport.js';
import { verifyDkim } from '../../support/dkim-check.js';
import { testDkimKey } from '../../support/test-ca.js';
import { startDeliveryWorld, type DeliveryWorld } from './world.js';

describe('sending threads', () => {
  let world: DeliveryWorld;
  let transport: Transport;
  const dkim = { domainName: 'sender.outreach.test', keySelector: 's1', privateKey: testDkimKey().privateKey };

  beforeAll(async () => {
    world = await startDeliveryWorld({}, ['valid', 'expired']);
    const wire = { heloName: 'sender.outreach.test', ca: [world.ca.cert], timeoutMs: 5000, maxConnectionsPerMx: 4 };
    transport = createTransport({ ...wire, connections: createThreadedConnections({ ...wire, threads: 2 }) });
  });
  afterAll(async () => {
    await transport?.close();
    await world?.close();
  });

  const request = async (domain: string, i: number, extra: Partial<SendRequest> = {}): Promise<SendRequest> => {
    const route = await world.router.assess(domain);
    const candidate = route.verified ?? route.candidates[0]!;
    const raw = await buildWireMessage(
      { from: 'Clinic <care@sender.outreach.test>', to: `patient${i}@${domain}`, subject: 'Your reminder', text: `CANARY-PHI-thread-${i}`, html: `<p>CANARY-PHI-thread-${i}</p>`, phiFree: false },
      { messageId: `<thread-${domain}-${i}@sender.outreach.test>` },
    );
    return { domain, candidate, tls: 'verified', envelope: { from: 'care@sender.outreach.test', to: `patient${i}@${domain}` }, raw, dkim, ...extra };
  };

  it('signs and sends every message on the threads: verified TLS, a DKIM signature that verifies, the TLS evidence returned', async () => {
    const n = 40;
    await world.router.assess('valid.test'); // the STARTTLS probe's own connection comes first
    const connectionsBefore = world.sinks.valid.connections;
    const outcomes = await Promise.all(Array.from({ length: n }, async (_, i) => transport.send(await request('valid.test', i))));
    expect(outcomes.map((o) => o.status)).toEqual(Array(n).fill('delivered'));
    for (const o of outcomes) expect(o.peer).toMatchObject({ verified: true, protocol: expect.stringMatching(/^TLSv1\.[23]$/) });
    const got = world.sinks.valid.messages.filter((m) => m.raw.includes('CANARY-PHI-thread-'));
    expect(got).toHaveLength(n);
    for (const m of got) {
      expect(m.secure).toBe(true);
      expect(verifyDkim(m.raw.toString('latin1'), testDkimKey().publicKey).d).toBe('sender.outreach.test');
    }
    // Pooled per thread: two threads of two connections each, not a connection per message.
    expect(world.sinks.valid.connections - connectionsBefore).toBeLessThanOrEqual(4);
  });

  it('never sends PHI over a certificate that does not verify: the thread answers deferred with the TLS reason and the sink gets nothing', async () => {
    const before = world.sinks.expired.messages.length;
    const outcome = await transport.send(await request('expired.test', 1, { candidate: (await world.router.assess('expired.test')).candidates[0]! }));
    expect(outcome).toMatchObject({ status: 'deferred', tlsFailure: 'cert-expired' });
    expect(world.sinks.expired.messages.length).toBe(before);
  });

  it('answers a message it cannot sign as deferred with the reason, and sends nothing', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const before = world.sinks.valid.messages.length;
    const outcome = await transport.send(await request('valid.test', 99, { dkim: { ...dkim, privateKey: ec } }));
    expect(outcome).toMatchObject({ status: 'deferred', response: expect.stringMatching(/^DKIM signing failed: DKIM key must be an RSA private key/) });
    expect(world.sinks.valid.messages.length).toBe(before);
  });

  it('answers the messages of a thread that dies as deferred (they stay queued, none is lost), and sends the next on a new thread', async () => {
    const wire = { heloName: 'sender.outreach.test', ca: [world.ca.cert], timeoutMs: 5000 };
    const dying = createTransport({ ...wire, connections: createThreadedConnections({ ...wire, threads: 1, entry: new URL('./dying-thread-entry.js', import.meta.url) }) });
    try {
      expect((await dying.send(await request('valid.test', 300))).status).toBe('delivered');
      // Both are built first and handed over in the same tick: both are on the thread when it dies.
      const die = await request('valid.test', 301);
      const next = await request('valid.test', 302);
      const outcomes = await Promise.all([dying.send({ ...die, envelope: { ...die.envelope, to: 'die@valid.test' } }), dying.send(next)]);
      for (const o of outcomes) expect(o).toMatchObject({ status: 'deferred', response: expect.stringMatching(/^sending thread stopped: (exit 3|error)$/) });
      expect((await dying.send(await request('valid.test', 303))).status).toBe('delivered');
    } finally {
      await dying.close();
    }
  });

  it('after close, a send is answered deferred (the message stays queued), and the threads are gone', async () => {
    const wire = { heloName: 'sender.outreach.test', ca: [world.ca.cert], timeoutMs: 5000 };
    const closing = createTransport({ ...wire, connections: createThreadedConnections({ ...wire, threads: 1 }) });
    expect((await closing.send(await request('valid.test', 200))).status).toBe('delivered');
    await closing.close();
    expect(await closing.send(await request('valid.test', 201))).toMatchObject({ status: 'deferred', response: 'transport closed' });
  });
});
