// The escrow portal: a notice link opens only after the one-time code and the date of birth; wrong codes, expired links and brute force fail; every view is audited; nothing is stored in plaintext.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import { createOutbox, type OutboxMessage } from '../../../connector/delivery/outbox.js';
import { createEscrowPortal, type EscrowPortal } from '../../../connector/portal/escrow-portal.js';
import { openDb, resetDb, type Db } from '../../../connector/store/db.js';
import { phi, reveal } from '../../../fhir/phi.js';
import { createTestCipher } from '../../support/test-cipher.js';

const CANARY = 'CANARY-PHI-HbA1c-9.4%';

describe('escrow portal', () => {
  let db: Db;
  let audit: AuditLog;
  let portal: EscrowPortal;
  let clock: Date;
  let message: OutboxMessage;
  const codes: Array<{ address: string; code: string }> = [];
  const cipher = createTestCipher();

  beforeAll(async () => {
    db = await openDb();
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await resetDb(db);
    clock = new Date('2026-03-01T09:00:00Z');
    codes.length = 0;
    audit = createAuditLog({ db, cipher, clock: () => clock });
    portal = createEscrowPortal({
      db, cipher, audit, publicUrl: 'https://outreach.clinic.test', now: () => clock,
      birthDateOf: async (patientId) => (patientId === '4711' ? phi('1961-07-04') : undefined),
      deliverCode: async (address, code) => void codes.push({ address: reveal(address), code }),
    });
    const outbox = createOutbox(db, { messageIdDomain: 'clinic.test', now: () => clock });
    await outbox.enqueue([{ campaignId: 'labs', templateVersion: 1, patientId: '4711', purpose: 'screening-reminder', deliveryMode: 'escrow' }]);
    [message] = (await outbox.claim('w', 1, 60_000)) as [OutboxMessage];
  });

  const deposit = async () => {
    const link = await portal.deposit(message, { from: 'care@clinic.test', to: 'ana@patient.test', subject: 'Your lab result', text: `Your result: ${CANARY}`, phiFree: false }, clock);
    expect(link.url).toMatch(/^https:\/\/outreach\.clinic\.test\/m\/[A-Za-z0-9_-]{43}$/);
    return link.url.slice(link.url.lastIndexOf('/') + 1);
  };

  it('shows the message after the code sent to the same address and the date of birth, and audits the view', async () => {
    const token = await deposit();
    expect(await portal.open(token)).toMatchObject({ locked: false });
    await portal.sendCode(token);
    expect(codes).toHaveLength(1);
    expect(codes[0]!.address).toBe('ana@patient.test');
    const { session } = await portal.verify(token, codes[0]!.code, '1961-07-04');
    const content = reveal(await portal.read(token, session));
    expect(content).toMatchObject({ subject: 'Your lab result', text: `Your result: ${CANARY}` });
    const trail = [];
    for await (const r of audit.search({ patientId: '4711', actionPrefix: 'escrow.' })) trail.push([r.action, r.outcome, r.entity]);
    expect(trail).toEqual([
      ['escrow.verify', 'success', `outbox/${message.id}`],
      ['escrow.view', 'success', `outbox/${message.id}`],
    ]);
    expect((await audit.verify()).ok).toBe(true);
  });

  it('keeps nothing readable in the database: no content, no address, no token', async () => {
    const token = await deposit();
    const dump = JSON.stringify(await db.query('SELECT * FROM escrow_messages'), (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    expect(dump).not.toContain('CANARY');
    expect(dump).not.toContain('ana@patient.test');
    expect(dump).not.toContain(token);
  });

  it('refuses a wrong code or a wrong date of birth without saying which', async () => {
    const token = await deposit();
    await portal.sendCode(token);
    const wrong = codes[0]!.code === '000000' ? '111111' : '000000';
    await expect(portal.verify(token, wrong, '1961-07-04')).rejects.toMatchObject({ code: 'PORTAL_VERIFICATION_FAILED' });
    await expect(portal.verify(token, codes[0]!.code, '1961-07-05')).rejects.toMatchObject({ code: 'PORTAL_VERIFICATION_FAILED' });
    await expect(portal.read(token, 'not-a-session')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // The right pair still works before the lockout threshold.
    const { session } = await portal.verify(token, codes[0]!.code, '1961-07-04');
    expect(reveal(await portal.read(token, session)).text).toContain(CANARY);
  });

  it('refuses an expired link and an expired code', async () => {
    const token = await deposit();
    await portal.sendCode(token);
    clock = new Date(clock.getTime() + 11 * 60_000);
    await expect(portal.verify(token, codes[0]!.code, '1961-07-04')).rejects.toMatchObject({ code: 'PORTAL_VERIFICATION_FAILED' });
    clock = new Date(clock.getTime() + 15 * 86_400_000);
    await expect(portal.open(token)).rejects.toMatchObject({ code: 'PORTAL_LINK_INVALID' });
    await expect(portal.sendCode(token)).rejects.toMatchObject({ code: 'PORTAL_LINK_INVALID' });
    await expect(portal.open('A'.repeat(43))).rejects.toMatchObject({ code: 'PORTAL_LINK_INVALID' });
  });

  it('locks out after five failed attempts, even for the right code, until the lockout ends', async () => {
    const token = await deposit();
    await portal.sendCode(token);
    const right = codes[0]!.code;
    const guesses = ['000001', '000002', '000003', '000004', '000005'].filter((g) => g !== right).slice(0, 4);
    for (const g of guesses) await expect(portal.verify(token, g, '1961-07-04')).rejects.toMatchObject({ code: 'PORTAL_VERIFICATION_FAILED' });
    await expect(portal.verify(token, '999999' === right ? '999998' : '999999', '1961-07-04')).rejects.toMatchObject({ code: 'LOCKED_OUT' });
    await expect(portal.verify(token, right, '1961-07-04')).rejects.toMatchObject({ code: 'LOCKED_OUT' });
    expect(await portal.open(token)).toMatchObject({ locked: true });
    await expect(portal.sendCode(token)).rejects.toMatchObject({ code: 'LOCKED_OUT' });
    // After the lockout a new code is needed: the old one was voided.
    clock = new Date(clock.getTime() + 31 * 60_000);
    await expect(portal.verify(token, right, '1961-07-04')).rejects.toMatchObject({ code: 'PORTAL_VERIFICATION_FAILED' });
    await portal.sendCode(token);
    const { session } = await portal.verify(token, codes.at(-1)!.code, '1961-07-04');
    expect(reveal(await portal.read(token, session)).subject).toBe('Your lab result');
    const denied = [];
    for await (const r of audit.search({ patientId: '4711', actionPrefix: 'escrow.verify' })) if (r.outcome === 'denied') denied.push(r);
    // Four wrong guesses, the one that locked, the right code while locked, the voided code after the lockout.
    expect(denied.length).toBe(7);
  });
});
