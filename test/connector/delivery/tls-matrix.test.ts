// The TLS matrix: every MX failure mode × every delivery mode, asserting what each sink received, what was held, and that no PHI byte crossed an unverified connection.
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, type ConsentGate } from '../../../connector/delivery/dispatcher.js';
import type { EscrowDesk } from '../../../connector/delivery/escrow-notice.js';
import type { RenderedMessage } from '../../../connector/delivery/mime.js';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { createEscrowPortal, type EscrowPortal } from '../../../connector/portal/escrow-portal.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { createCodeMailer } from '../../../connector/delivery/code-mailer.js';
import { phi, reveal } from '../../../fhir/phi.js';
import { createOutbox, type Outbox, type OutboxMessage } from '../../../connector/delivery/outbox.js';
import type { DeliveryMode } from '../../../connector/delivery/tls-policy.js';
import { openDb, type Db } from '../../../connector/store/db.js';
import { domainOf, scenarios, startDeliveryWorld, type DeliveryWorld, type Scenario } from './world.js';

/** The raw bytes plus the decoded subject and bodies: a canary split by quoted-printable still shows. */
async function readable(raw: Buffer): Promise<string> {
  const parsed = await simpleParser(raw);
  return [raw.toString('utf8'), parsed.subject ?? '', parsed.text ?? '', typeof parsed.html === 'string' ? parsed.html : ''].join('\n');
}

const modes: DeliveryMode[] = ['tls-required', 'tls-or-escrow', 'escrow'];
const canary = (s: string, m: string) => `CANARY-PHI-${s}-${m}-A1c-9.1%`;

type Expect = 'delivered' | 'notice' | 'held';
const expected: Record<Scenario, Record<DeliveryMode, Expect>> = {
  valid: { 'tls-required': 'delivered', 'tls-or-escrow': 'delivered', escrow: 'notice' },
  'no-starttls': { 'tls-required': 'held', 'tls-or-escrow': 'notice', escrow: 'notice' },
  'self-signed': { 'tls-required': 'held', 'tls-or-escrow': 'notice', escrow: 'notice' },
  expired: { 'tls-required': 'held', 'tls-or-escrow': 'notice', escrow: 'notice' },
  'wrong-hostname': { 'tls-required': 'held', 'tls-or-escrow': 'notice', escrow: 'notice' },
  'starttls-broken': { 'tls-required': 'held', 'tls-or-escrow': 'notice', escrow: 'notice' },
  // The recipient publishes a TLS requirement that no MX meets: nothing at all may go, not even a notice (RFC 8461 §5, RFC 7672 §2.2).
  'mta-sts-mismatch': { 'tls-required': 'held', 'tls-or-escrow': 'held', escrow: 'held' },
  'dane-mismatch': { 'tls-required': 'held', 'tls-or-escrow': 'held', escrow: 'held' },
  'mta-sts-ok': { 'tls-required': 'delivered', 'tls-or-escrow': 'delivered', escrow: 'notice' },
  'dane-ok': { 'tls-required': 'delivered', 'tls-or-escrow': 'delivered', escrow: 'notice' },
};

// Once with the wire on the event loop, once on sending threads (the product's default): the policy must hold on both.
describe.each([
  ['on the event loop', 0],
  ['on two sending threads', 2],
])('TLS policy matrix over real SMTP sinks, the wire %s', (_wire, threads) => {
  let world: DeliveryWorld;
  let db: Db;
  let outbox: Outbox;
  // The real escrow portal takes the message the notice points to.
  const cipher = createTestCipher();
  let portal: EscrowPortal;
  const deposits: string[] = [];
  const render = async (m: OutboxMessage): Promise<RenderedMessage> => {
    const [scenario, mode] = m.patientId.split('|') as [Scenario, DeliveryMode];
    return {
      from: 'Clinic <care@sender.outreach.test>',
      to: `patient@${domainOf(scenario)}`,
      subject: 'Your screening reminder',
      text: `Dear patient, your result ${canary(scenario, mode)} is ready.`,
      phiFree: false,
    };
  };
  const allow: ConsentGate = async () => ({ allowed: true, version: 'auth-v3' });
  const rows = new Map<string, OutboxMessage>();

  beforeAll(async () => {
    world = await startDeliveryWorld({}, undefined, { threads });
    db = await openDb();
    outbox = createOutbox(db, { messageIdDomain: 'sender.outreach.test' });
    portal = createEscrowPortal({
      db, cipher, audit: createAuditLog({ db, cipher }), publicUrl: 'https://portal.outreach.test',
      birthDateOf: async () => phi('1970-01-01'),
      deliverCode: createCodeMailer({ router: world.router, transport: world.transport, from: 'Riverside Clinic <codes@sender.outreach.test>', senderName: 'Riverside Clinic', domain: 'sender.outreach.test' }),
    });
    const escrow: EscrowDesk = {
      deposit: async (message, rendered, at) => {
        deposits.push(message.id);
        return portal.deposit(message, rendered, at);
      },
    };
    await outbox.enqueue(
      scenarios.flatMap((s) => modes.map((mode) => ({ campaignId: 'c-matrix', templateVersion: 1, patientId: `${s}|${mode}`, purpose: 'screening', deliveryMode: mode }))),
    );
    const dispatcher = new Dispatcher({
      outbox, router: world.router, transport: world.transport, render, isAllowed: allow, escrow,
      notice: { senderName: 'Riverside Clinic', from: 'notices@sender.outreach.test' }, concurrency: 6, maxAttempts: undefined,
    } as never);
    const summary = await dispatcher.drain();
    expect(summary.claimed).toBe(scenarios.length * modes.length);
    for (const s of scenarios) for (const mode of modes) rows.set(`${s}|${mode}`, (await outbox.byIdempotencyKey(`c-matrix:1:${s}|${mode}`))!);
  });
  afterAll(async () => {
    await world?.close();
    await db?.close();
  });

  for (const s of scenarios) {
    for (const mode of modes) {
      const want = expected[s][mode];
      it(`${s} in ${mode}: ${want}`, async () => {
        const row = rows.get(`${s}|${mode}`)!;
        const got = world.sinks[s].messages.filter((m) => m.raw.includes(row.messageId));
        if (want === 'held') {
          expect(row.state).toBe('held');
          expect(row.lastError).toBeTruthy();
          expect(got).toHaveLength(0);
          return;
        }
        expect(got).toHaveLength(1);
        const raw = await readable(got[0]!.raw);
        if (want === 'delivered') {
          expect(row.state).toBe('delivered');
          expect(row.deliveredAs).toBe('message');
          expect(raw).toContain(canary(s, mode));
          expect(got[0]!.secure).toBe(true);
          expect(row.tlsEvidence).toMatchObject({ verified: true, route: 'verified', mx: `mx.${domainOf(s)}`, protocol: 'TLSv1.3' });
          expect(row.tlsEvidence!.certIssuer).toContain('Secure Outreach Test CA');
          expect(row.tlsEvidence!.certSubject).toContain(`CN=mx.${domainOf(s)}`);
          expect(row.smtpResponse).toMatch(/^250/);
          expect(row.consentVersion).toBe('auth-v3');
        } else {
          expect(row.state).toBe('notice_sent');
          expect(row.deliveredAs).toBe('notice');
          expect(raw).not.toContain('CANARY');
          expect(raw).not.toContain('screening');
          const link = /https:\/\/portal\.outreach\.test\/m\/([A-Za-z0-9_-]{43})/.exec(raw);
          expect(link).not.toBeNull();
          // The link opens a live escrow entry.
          expect(await portal.open(link![1]!)).toMatchObject({ locked: false });
        }
      });
    }
  }

  it('records the MTA-STS and DANE verdicts in the evidence', () => {
    expect(rows.get('mta-sts-ok|tls-required')!.tlsEvidence!.mtaSts).toMatchObject({ status: 'mx-match', mode: 'enforce' });
    expect(rows.get('dane-ok|tls-required')!.tlsEvidence!.dane).toMatchObject({ status: 'matched', usage: 3 });
    expect(rows.get('mta-sts-mismatch|tls-required')!.lastError).toContain('mta-sts-mx-mismatch');
    expect(rows.get('dane-mismatch|tls-required')!.lastError).toContain('dane-mismatch');
    expect(rows.get('expired|tls-required')!.lastError).toContain('cert-expired');
    expect(rows.get('self-signed|tls-required')!.lastError).toContain('cert-untrusted');
    expect(rows.get('wrong-hostname|tls-required')!.lastError).toContain('cert-hostname');
    expect(rows.get('no-starttls|tls-required')!.lastError).toContain('no-starttls');
    expect(rows.get('starttls-broken|tls-required')!.lastError).toContain('handshake-failed');
  });

  it('lets no PHI byte reach a sink except inside verified TLS to the intended MX', async () => {
    const all = world.received();
    expect(all.length).toBeGreaterThan(0);
    for (const m of all) {
      const text = await readable(Buffer.from(m.raw));
      if (!text.includes('CANARY-PHI') && !text.includes('screening')) continue;
      expect(m.secure).toBe(true);
      expect(['valid', 'mta-sts-ok', 'dane-ok']).toContain(m.scenario);
      expect(text).toContain(`CANARY-PHI-${m.scenario}-`);
    }
    // And the notices that did cross plaintext really were plaintext: the check above is not vacuous.
    expect(all.some((m) => !m.secure)).toBe(true);
  });

  it('lets the recipient of a notice read the message in the portal with the code emailed over verified TLS', async () => {
    const row = rows.get('valid|escrow')!;
    const notice = world.sinks.valid.messages.find((m) => m.raw.includes(row.messageId))!;
    const token = /https:\/\/portal\.outreach\.test\/m\/([A-Za-z0-9_-]{43})/.exec(await readable(notice.raw))![1]!;
    const before = world.sinks.valid.messages.length;
    await portal.sendCode(token);
    const codeMail = world.sinks.valid.messages[before]!;
    expect(codeMail.secure).toBe(true);
    const code = /one-time code is (\d{6})/.exec(await readable(codeMail.raw))![1]!;
    expect(await readable(codeMail.raw)).not.toContain('CANARY');
    const { session } = await portal.verify(token, code, '1970-01-01');
    expect(reveal(await portal.read(token, session)).text).toContain(canary('valid', 'escrow'));
  });

  it('deposits exactly one escrow copy per notice', () => {
    const notices = [...rows.values()].filter((r) => r.state === 'notice_sent');
    expect(deposits.sort()).toEqual(notices.map((r) => r.id).sort());
  });
});
