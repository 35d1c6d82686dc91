// The escrow portal: holds a message sealed behind an opaque 32-byte link, lets the recipient in after a one-time code to the same address and a date-of-birth check, audits every view, locks out guessing.
import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { EscrowDesk } from '../delivery/escrow-notice.js';
import type { RenderedMessage } from '../delivery/mime.js';
import type { OutboxMessage } from '../delivery/outbox.js';
import { fail } from '../errors.js';
import type { FieldCipher } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';
import { phi, type Phi } from '../../fhir/phi.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['nextId', 'insert', 'byToken', 'setCode', 'recordFailure', 'openSession', 'recordView'] as const);

export interface EscrowPortalDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  /** Base URL of the public routes (config.publicUrl). */
  publicUrl: string;
  /** The patient's date of birth (YYYY-MM-DD) from the store, for the identity check. */
  birthDateOf: (patientId: string) => Promise<Phi<string> | undefined>;
  /** Sends the one-time code to the address the message went to (the code email holds nothing else). */
  deliverCode: (address: Phi<string>, code: string) => Promise<void>;
  /** How long a link works (default 14 days). */
  linkTtlMs?: number;
  codeTtlMs?: number;
  sessionTtlMs?: number;
  /** Failed checks before a lockout (default 5), and its length (default 30 minutes). */
  maxFailures?: number;
  lockoutMs?: number;
  /** Codes that may be sent for one link (default 5). */
  maxCodes?: number;
  now?: () => Date;
}

export interface EscrowContent {
  subject: string;
  text: string;
  html?: string;
}

export interface EscrowPortal extends EscrowDesk {
  /** What the landing page may show for a link: only that it is valid and until when. */
  open(token: string): Promise<{ expiresAt: Date; locked: boolean }>;
  /** Emails a fresh one-time code to the message's address. */
  sendCode(token: string): Promise<void>;
  /** Checks the code and the date of birth; returns a reader session token (opaque, short-lived). */
  verify(token: string, code: string, birthDate: string): Promise<{ session: string; expiresAt: Date }>;
  /** The message, for a verified session; every call is audited. */
  read(token: string, session: string): Promise<Phi<EscrowContent>>;
}

type Row = {
  id: unknown; patient_id: string; purpose: string; outbox_id: unknown; address_sealed: Uint8Array; content_sealed: Uint8Array; expires_at: Date;
  codes_sent: number; code_hash: Uint8Array | null; code_expires_at: Date | null; failed_attempts: number; locked_until: Date | null;
  session_hash: Uint8Array | null; session_expires_at: Date | null;
};

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();
const sameBytes = (a: Uint8Array | null, b: Buffer) => !!a && a.length === b.length && timingSafeEqual(asBuffer(a), b);

export function createEscrowPortal(deps: EscrowPortalDeps): EscrowPortal {
  const now = deps.now ?? (() => new Date());
  const base = deps.publicUrl.replace(/\/$/, '');
  const maxFailures = deps.maxFailures ?? 5;
  // Codes are hashed with a per-process key as well: a database reader cannot brute-force the 10^6 space offline.
  const codeKey = randomBytes(32);
  const codeHash = (id: string, code: string) => createHmac('sha256', codeKey).update(`${id}:${code}`).digest();

  const rowOf = async (token: string): Promise<Row & { id: string }> => {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw fail('PORTAL_LINK_INVALID');
    const [row] = await deps.db.query<Row>(q.byToken, [sha256(token)]);
    if (!row || new Date(row.expires_at).getTime() <= now().getTime()) throw fail('PORTAL_LINK_INVALID');
    return { ...row, id: String(row.id) };
  };
  const audit = (row: Row & { id: string }, action: string, outcome: 'success' | 'denied') =>
    deps.audit.append({
      actor: 'escrow-recipient', role: 'recipient', action, purpose: row.purpose, patientId: row.patient_id,
      entity: row.outbox_id != null ? `outbox/${String(row.outbox_id)}` : `escrow/${row.id}`, outcome, at: now(),
    });
  const at = (table: string, column: string, rowId: string) => ({ table, column, rowId });

  return {
    async deposit(message: OutboxMessage, rendered: RenderedMessage, when: Date) {
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(when.getTime() + (deps.linkTtlMs ?? 14 * 86_400_000));
      const [{ id }] = (await deps.db.query<{ id: unknown }>(q.nextId)) as [{ id: unknown }];
      const rowId = String(id);
      const content: EscrowContent = { subject: rendered.subject, text: rendered.text, ...(rendered.html ? { html: rendered.html } : {}) };
      await deps.db.query(q.insert, [
        rowId, sha256(token), message.id, message.patientId, message.purpose,
        deps.cipher.seal(rendered.to, at('escrow_messages', 'address_sealed', rowId)),
        deps.cipher.seal(JSON.stringify(content), at('escrow_messages', 'content_sealed', rowId)),
        expiresAt, when,
      ]);
      return { url: `${base}/m/${token}`, expiresAt };
    },

    async open(token) {
      const row = await rowOf(token);
      return { expiresAt: new Date(row.expires_at), locked: !!row.locked_until && new Date(row.locked_until).getTime() > now().getTime() };
    },

    async sendCode(token) {
      const row = await rowOf(token);
      if (row.locked_until && new Date(row.locked_until).getTime() > now().getTime()) throw fail('LOCKED_OUT');
      if (row.codes_sent >= (deps.maxCodes ?? 5)) throw fail('RATE_LIMITED', 'too many codes were sent for this link');
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      await deps.db.query(q.setCode, [row.id, codeHash(row.id, code), new Date(now().getTime() + (deps.codeTtlMs ?? 600_000))]);
      const address = phi(deps.cipher.openText(row.address_sealed, at('escrow_messages', 'address_sealed', row.id)));
      await deps.deliverCode(address, code);
    },

    async verify(token, code, birthDate) {
      const row = await rowOf(token);
      const t = now();
      if (row.locked_until && new Date(row.locked_until).getTime() > t.getTime()) {
        await audit(row, 'escrow.verify', 'denied');
        throw fail('LOCKED_OUT');
      }
      const codeOk = /^\d{6}$/.test(code) && !!row.code_expires_at && new Date(row.code_expires_at).getTime() > t.getTime() && sameBytes(row.code_hash, codeHash(row.id, code));
      const dob = await deps.birthDateOf(row.patient_id);
      const dobOk = !!dob && /^\d{4}-\d{2}-\d{2}$/.test(birthDate) && sameBytes(sha256(String(dob)), sha256(birthDate));
      if (!codeOk || !dobOk) {
        const [after] = await deps.db.query<{ failed_attempts: number; locked_until: Date | null }>(q.recordFailure, [
          row.id, maxFailures, new Date(t.getTime() + (deps.lockoutMs ?? 1_800_000)), t,
        ]);
        await audit(row, 'escrow.verify', 'denied');
        // Which of the two failed is not said: that would help a guesser.
        if (after?.locked_until) throw fail('LOCKED_OUT');
        throw fail('PORTAL_VERIFICATION_FAILED');
      }
      const session = randomBytes(32).toString('base64url');
      const expiresAt = new Date(t.getTime() + (deps.sessionTtlMs ?? 900_000));
      await deps.db.query(q.openSession, [row.id, sha256(session), expiresAt]);
      await audit(row, 'escrow.verify', 'success');
      return { session, expiresAt };
    },

    async read(token, session) {
      const row = await rowOf(token);
      const valid = sameBytes(row.session_hash, sha256(session)) && !!row.session_expires_at && new Date(row.session_expires_at).getTime() > now().getTime();
      if (!valid) {
        await audit(row, 'escrow.view', 'denied');
        throw fail('UNAUTHENTICATED', 'verify the one-time code and date of birth first');
      }
      const content = JSON.parse(deps.cipher.openText(row.content_sealed, at('escrow_messages', 'content_sealed', row.id))) as EscrowContent;
      await deps.db.query(q.recordView, [row.id, now()]);
      await audit(row, 'escrow.view', 'success');
      return phi(content);
    },
  };
}
