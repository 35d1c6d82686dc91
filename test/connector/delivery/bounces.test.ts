// Bounces and complaints through the inbound listener: DSN (RFC 3464) and ARF (RFC 5965) samples lead to suppression or a retry, and the dispatcher honours the suppression.
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFeedbackProcessor, parseFeedback, startBounceListener, type FeedbackProcessor } from '../../../connector/delivery/bounces.js';
import { Dispatcher } from '../../../connector/delivery/dispatcher.js';
import { createOutbox, type Outbox } from '../../../connector/delivery/outbox.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { clearDelivery, startDeliveryWorld, type DeliveryWorld } from './world.js';

const dsn = (messageId: string, recipient: string, action: string, status: string) =>
  [
    'From: Mail Delivery System <MAILER-DAEMON@mx.valid.test>',
    'To: bounces@sender.outreach.test',
    'Subject: Undelivered Mail Returned to Sender',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    '\tboundary="==dsn-boundary=="',
    '',
    '--==dsn-boundary==',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'This is the mail system at host mx.valid.test. Your message could not be delivered.',
    '',
    '--==dsn-boundary==',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.valid.test',
    'Arrival-Date: Mon, 2 Mar 2026 10:00:00 +0000',
    '',
    `Final-Recipient: rfc822; ${recipient}`,
    `Original-Recipient: rfc822;${recipient}`,
    `Action: ${action}`,
    `Status: ${status}`,
    `Diagnostic-Code: smtp; ${status.startsWith('5') ? '550 5.1.1 <' + recipient + '>: Recipient address rejected' : '452 4.2.2 Mailbox full'}`,
    '',
    '--==dsn-boundary==',
    'Content-Type: text/rfc822-headers',
    '',
    'From: Riverside Clinic <care@sender.outreach.test>',
    `To: ${recipient}`,
    'Subject: Secure message from Riverside Clinic',
    `Message-ID: ${messageId}`,
    '',
    '--==dsn-boundary==--',
    '',
  ].join('\r\n');

const arf = (messageId: string, recipient: string) =>
  [
    'From: <abuse@mailbox-provider.test>',
    'To: <bounces@sender.outreach.test>',
    'Subject: FW: Spring newsletter',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="part1_13d.2e68ed54_boundary"',
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: text/plain; charset="US-ASCII"',
    'Content-Transfer-Encoding: 7bit',
    '',
    'This is an email abuse report for an email message received from IP 192.0.2.1.',
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: SomeGenerator/1.0',
    'Version: 1',
    `Original-Rcpt-To: <${recipient}>`,
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    'From: <care@sender.outreach.test>',
    `To: <${recipient}>`,
    'Subject: Spring newsletter',
    `Message-ID: ${messageId}`,
    '',
    'Flu shots are available.',
    '',
    '--part1_13d.2e68ed54_boundary--',
    '',
  ].join('\r\n');

describe('bounces and complaints', () => {
  let db: Db;
  let outbox: Outbox;
  let processor: FeedbackProcessor;
  let listener: Awaited<ReturnType<typeof startBounceListener>>;
  let world: DeliveryWorld;
  const cipher = createTestCipher();
  let clock = new Date();

  const deliverReport = async (raw: string) => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: listener.port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: '', to: 'bounces@sender.outreach.test' }, raw });
    t.close();
  };
  const dispatcher = () =>
    new Dispatcher({
      outbox, router: world.router, transport: world.transport, suppressions: processor, now: () => clock,
      isAllowed: async () => ({ allowed: true, version: 'auth-1' }),
      render: async (m) => ({ from: 'care@sender.outreach.test', to: `${m.patientId}@valid.test`, subject: 'Reminder', text: 'Your visit is due.', phiFree: false }),
    });

  beforeAll(async () => {
    db = await openDb();
    world = await startDeliveryWorld({}, ['valid']);
  });
  afterAll(async () => {
    await listener?.close();
    await world?.close();
    await db?.close();
  });
  beforeEach(async () => {
    await clearDelivery(db);
    await listener?.close();
    clock = new Date();
    outbox = createOutbox(db, { messageIdDomain: 'sender.outreach.test', now: () => clock });
    processor = createFeedbackProcessor({ db, cipher, softBounceRetryMs: 60_000, now: () => clock });
    listener = await startBounceListener({ processor });
    world.sinks.valid.messages.length = 0;
  });

  it('reads DSN and ARF samples', () => {
    expect(parseFeedback(dsn('<a@x>', 'gone@valid.test', 'failed', '5.1.1'))).toEqual({ kind: 'hard-bounce', status: '5.1.1', recipient: 'gone@valid.test', originalMessageId: '<a@x>' });
    expect(parseFeedback(dsn('<a@x>', 'full@valid.test', 'delayed', '4.2.2'))).toMatchObject({ kind: 'soft-bounce', status: '4.2.2' });
    expect(parseFeedback(dsn('<a@x>', 'ok@valid.test', 'delivered', '2.0.0'))).toMatchObject({ kind: 'delivered' });
    expect(parseFeedback(arf('<b@x>', 'angry@valid.test'))).toEqual({ kind: 'complaint', status: 'abuse', recipient: 'angry@valid.test', originalMessageId: '<b@x>' });
    expect(parseFeedback('Subject: out of office\r\n\r\nI am away.')).toEqual({ kind: 'unrecognised' });
  });

  it('suppresses an address after a hard bounce, and the next message to it is cancelled, not sent', async () => {
    await outbox.enqueue([{ campaignId: 'c1', templateVersion: 1, patientId: 'gone', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await dispatcher().drain();
    const sent = (await outbox.byIdempotencyKey('c1:1:gone'))!;
    expect(sent.state).toBe('delivered');
    await deliverReport(dsn(sent.messageId, 'gone@valid.test', 'failed', '5.1.1'));
    expect(await processor.reasonFor('gone', 'Gone@Valid.test')).toBe('hard-bounce 5.1.1');
    // The suppression list holds a blind index, never the address.
    const rows = await db.query<Record<string, unknown>>('SELECT * FROM delivery_suppressions');
    expect(JSON.stringify(rows)).not.toContain('gone@valid.test');
    await outbox.enqueue([{ campaignId: 'c2', templateVersion: 1, patientId: 'gone', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await dispatcher().drain();
    expect(await outbox.byIdempotencyKey('c2:1:gone')).toMatchObject({ state: 'cancelled', cancelReason: 'suppressed: hard-bounce 5.1.1' });
    expect(world.sinks.valid.messages).toHaveLength(1);
  });

  it('suppresses the patient after a complaint', async () => {
    await outbox.enqueue([{ campaignId: 'c1', templateVersion: 1, patientId: 'angry', purpose: 'marketing', deliveryMode: 'tls-or-escrow' }]);
    await dispatcher().drain();
    const sent = (await outbox.byIdempotencyKey('c1:1:angry'))!;
    await deliverReport(arf(sent.messageId, 'angry@valid.test'));
    expect(await processor.reasonFor('angry', 'angry@valid.test')).toBe('complaint abuse');
    // The batch look-up the dispatcher uses answers exactly as one look-up per recipient does.
    const asked = [
      { patientId: 'angry', address: 'angry@valid.test' },
      { patientId: 'angry', address: 'a-new-address@valid.test' },
      { patientId: 'calm', address: 'calm@valid.test' },
      { patientId: 'calm', address: 'ANGRY@valid.test' },
    ];
    const batch = await processor.reasonsFor!(asked);
    expect(batch).toEqual(await Promise.all(asked.map((a) => processor.reasonFor(a.patientId, a.address))));
    expect(batch.slice(0, 3)).toEqual(['complaint abuse', 'complaint abuse', undefined]);
    const feedback = await db.query<{ kind: string; outbox_id: unknown }>('SELECT kind, outbox_id FROM delivery_feedback');
    expect(feedback.map((f) => [f.kind, String(f.outbox_id)])).toEqual([['complaint', sent.id]]);
  });

  it('retries after a soft bounce instead of suppressing', async () => {
    await outbox.enqueue([{ campaignId: 'c1', templateVersion: 1, patientId: 'full', purpose: 'treatment', deliveryMode: 'tls-required' }]);
    await dispatcher().drain();
    const sent = (await outbox.byIdempotencyKey('c1:1:full'))!;
    await deliverReport(dsn(sent.messageId, 'full@valid.test', 'delayed', '4.2.2'));
    expect(await processor.reasonFor('full', 'full@valid.test')).toBeUndefined();
    expect(await outbox.byIdempotencyKey('c1:1:full')).toMatchObject({ state: 'queued', lastError: 'soft bounce 4.2.2' });
    clock = new Date(clock.getTime() + 61_000);
    await dispatcher().drain();
    expect(await outbox.byIdempotencyKey('c1:1:full')).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(world.sinks.valid.messages).toHaveLength(2);
  });
});
