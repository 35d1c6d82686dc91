// Delivery wired from the configuration: the relay (smarthost with AUTH over verified STARTTLS, extra CA from a file) and direct-to-MX through configured DNS servers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDeliveryService } from '../../../connector/delivery/delivery-service.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { createTestCa } from '../../support/test-ca.js';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.js';
import { clearDelivery, startDeliveryWorld, type DeliveryWorld } from './world.js';

describe('delivery service from configuration', () => {
  let db: Db;
  const dir = mkdtempSync(join(tmpdir(), 'delivery-service-'));
  const ca = createTestCa();
  const caFile = join(dir, 'extra-ca.pem');
  let relay: SmtpSink;
  let fakeRelay: SmtpSink;
  let world: DeliveryWorld;
  const render = async (m: { patientId: string }) => ({
    from: 'Clinic <care@sender.outreach.test>', to: `patient@${m.patientId}`, subject: 'Reminder', text: 'CANARY-PHI your visit is due.', phiFree: false,
  });
  const isAllowed = async () => ({ allowed: true, version: 'auth-1' });

  beforeAll(async () => {
    writeFileSync(caFile, ca.cert);
    db = await openDb();
    const leaf = ca.leaf(['127.0.0.1']);
    relay = await startSmtpSink({ mode: 'starttls', key: leaf.key, cert: leaf.cert, auth: { user: 'relayuser', pass: 's3cret' } });
    const untrusted = ca.selfSigned(['127.0.0.1']);
    fakeRelay = await startSmtpSink({ mode: 'starttls', key: untrusted.key, cert: untrusted.cert, auth: { user: 'relayuser', pass: 's3cret' } });
    world = await startDeliveryWorld({}, ['valid']);
  });
  afterAll(async () => {
    await relay?.close();
    await fakeRelay?.close();
    await world?.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => clearDelivery(db));

  it('sends everything through the relay over verified STARTTLS, authenticating only inside TLS', async () => {
    const service = createDeliveryService({
      config: { smtpRelayUrl: `smtp://relayuser:s3cret@127.0.0.1:${relay.port}`, extraCaFile: caFile, dnsServers: [], senderConcurrency: 1, mxConnections: 2 },
      db, heloName: 'sender.outreach.test', render, isAllowed,
    });
    await service.outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'no-dns-needed.test', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await service.dispatcher.drain();
    await service.close();
    const row = (await service.outbox.byIdempotencyKey('c:1:no-dns-needed.test'))!;
    expect(row).toMatchObject({ state: 'delivered', deliveredAs: 'message' });
    expect(row.tlsEvidence).toMatchObject({ route: 'relay', verified: true, mx: '127.0.0.1' });
    expect(relay.messages).toHaveLength(1);
    expect(relay.messages[0]!.secure).toBe(true);
    expect(relay.logins).toEqual([{ user: 'relayuser', secure: true }]);
  });

  it('sends nothing and never authenticates when the relay certificate does not verify', async () => {
    const service = createDeliveryService({
      config: { smtpRelayUrl: `smtp://relayuser:s3cret@127.0.0.1:${fakeRelay.port}`, extraCaFile: caFile, dnsServers: [], senderConcurrency: 1, mxConnections: 2 },
      db, heloName: 'sender.outreach.test', render, isAllowed,
    });
    await service.outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'x.test', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await service.dispatcher.drain();
    await service.close();
    const row = (await service.outbox.byIdempotencyKey('c:1:x.test'))!;
    expect(row.state).toBe('queued');
    expect(row.lastError).toMatch(/cert-untrusted/);
    expect(fakeRelay.messages).toHaveLength(0);
    expect(fakeRelay.logins).toEqual([]);
  });

  it('goes direct to the MX through the configured DNS servers and the extra CA file', async () => {
    const service = createDeliveryService({
      config: { dnsServers: [world.dns.address], extraCaFile: caFile, senderConcurrency: 1, mxConnections: 2 },
      db, heloName: 'sender.outreach.test', render, isAllowed,
      connectTarget: async (host, service) => world.connectTable[`${service}:${host}`]!,
    });
    await service.outbox.enqueue([{ campaignId: 'c', templateVersion: 1, patientId: 'valid.test', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await service.dispatcher.drain();
    await service.close();
    expect(await service.outbox.byIdempotencyKey('c:1:valid.test')).toMatchObject({ state: 'delivered', recipientDomain: 'valid.test' });
    expect(world.dns.queries.some((q) => q.name === 'valid.test')).toBe(true);
  });
});
