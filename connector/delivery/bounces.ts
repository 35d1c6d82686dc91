// Bounces and complaints: an inbound SMTP listener that reads DSNs (RFC 3464) and ARF reports (RFC 5965); a hard bounce or complaint suppresses, a soft bounce retries.
import { SMTPServer } from 'smtp-server';
import type { FieldCipher } from '../store/cipher.js';
import { loadQueries, type Db } from '../store/db.js';
import type { Log } from '../logger.js';
import { silentLog } from '../logger.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'byMessageId', 'requeueSoftBounce', 'insertSuppression', 'findSuppression', 'findSuppressions', 'insertFeedback',
] as const);

export type FeedbackKind = 'hard-bounce' | 'soft-bounce' | 'complaint' | 'delivered' | 'unrecognised';

export interface FeedbackReport {
  kind: FeedbackKind;
  /** The Message-ID of the message the report is about (from the returned headers). */
  originalMessageId?: string;
  /** The recipient the report names (Final-Recipient or Original-Rcpt-To). Held in memory only. */
  recipient?: string;
  /** DSN status (5.1.1) or ARF feedback type (abuse). */
  status?: string;
}

interface Part {
  headers: Map<string, string>;
  body: string;
}

function parseHeaders(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of block.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = field.indexOf(':');
    if (colon > 0) {
      const name = field.slice(0, colon).trim().toLowerCase();
      if (!out.has(name)) out.set(name, field.slice(colon + 1).trim());
    }
  }
  return out;
}

function splitPart(text: string): Part {
  const t = text.replace(/\r\n/g, '\n');
  const end = t.indexOf('\n\n');
  const headers = parseHeaders(end < 0 ? t : t.slice(0, end));
  let body = end < 0 ? '' : t.slice(end + 2);
  if (/base64/i.test(headers.get('content-transfer-encoding') ?? '')) body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('latin1');
  return { headers, body };
}

function param(contentType: string, name: string): string | undefined {
  const m = new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function partsOf(part: Part): Part[] {
  const ct = part.headers.get('content-type') ?? '';
  const boundary = param(ct, 'boundary');
  if (!/^multipart\//i.test(ct) || !boundary) return [part];
  const pieces = part.body.split(`--${boundary}`);
  return pieces
    .slice(1)
    .filter((p) => !p.startsWith('--'))
    .map((p) => splitPart(p.replace(/^\n/, '')))
    .flatMap((p) => (/^multipart\//i.test(p.headers.get('content-type') ?? '') ? partsOf(p) : [p]));
}

/** The per-recipient fields of a message/delivery-status body (blocks after the per-message block). */
function dsnRecipients(body: string): Array<Map<string, string>> {
  return body
    .replace(/\r\n/g, '\n')
    .split(/\n\s*\n/)
    .slice(1)
    .map(parseHeaders)
    .filter((h) => h.has('final-recipient') || h.has('action'));
}

const addressIn = (v: string | undefined) => v?.replace(/^rfc822;\s*/i, '').replace(/^<|>$/g, '').trim() || undefined;

/** Reads a DSN or an ARF report; anything else is 'unrecognised'. */
export function parseFeedback(raw: Buffer | string): FeedbackReport {
  const top = splitPart(typeof raw === 'string' ? raw : raw.toString('latin1'));
  const ct = top.headers.get('content-type') ?? '';
  const parts = partsOf(top);
  const original = parts.find((p) => /^(message\/rfc822|text\/rfc822-headers|message\/rfc822-headers)/i.test(p.headers.get('content-type') ?? ''));
  const originalHeaders = original ? parseHeaders(original.body.replace(/\r\n/g, '\n').split('\n\n')[0]!) : undefined;
  const originalMessageId = originalHeaders?.get('message-id')?.match(/<[^>]+>/)?.[0];
  const withId = <T extends FeedbackReport>(r: T): T => (originalMessageId ? { ...r, originalMessageId } : r);
  const reportType = param(ct, 'report-type')?.toLowerCase();

  if (reportType === 'feedback-report') {
    const fr = parts.find((p) => /^message\/feedback-report/i.test(p.headers.get('content-type') ?? ''));
    const fields = fr ? parseHeaders(fr.body) : new Map<string, string>();
    const recipient = addressIn(fields.get('original-rcpt-to')) ?? addressIn(originalHeaders?.get('to')?.match(/<([^>]+)>/)?.[1] ?? originalHeaders?.get('to'));
    return withId({ kind: 'complaint', status: (fields.get('feedback-type') ?? 'abuse').toLowerCase(), ...(recipient ? { recipient } : {}) });
  }
  if (reportType === 'delivery-status') {
    const ds = parts.find((p) => /^message\/(global-)?delivery-status/i.test(p.headers.get('content-type') ?? ''));
    const [rcpt] = ds ? dsnRecipients(ds.body) : [];
    if (!rcpt) return withId({ kind: 'unrecognised' });
    const action = (rcpt.get('action') ?? '').toLowerCase();
    const status = rcpt.get('status')?.match(/[245]\.\d{1,3}\.\d{1,3}/)?.[0];
    const recipient = addressIn(rcpt.get('final-recipient')) ?? addressIn(rcpt.get('original-recipient'));
    const kind: FeedbackKind =
      action === 'failed' && status?.startsWith('5') ? 'hard-bounce'
        : action === 'failed' || action === 'delayed' || status?.startsWith('4') ? 'soft-bounce'
          : action === 'delivered' || action === 'relayed' || action === 'expanded' ? 'delivered'
            : 'unrecognised';
    return withId({ kind, ...(status ? { status } : {}), ...(recipient ? { recipient } : {}) });
  }
  return withId({ kind: 'unrecognised' });
}

export interface Suppressions {
  /** Why mail to this patient/address must not go (hard bounce, complaint), or undefined. */
  reasonFor(patientId: string, address: string): Promise<string | undefined>;
  /** The same for many recipients in one look-up; answers in the order asked. */
  reasonsFor?(recipients: ReadonlyArray<{ patientId: string; address: string }>): Promise<Array<string | undefined>>;
}

export interface FeedbackProcessorDeps {
  db: Db;
  /** Blind indexes of addresses: the suppression list never holds an address. */
  cipher: Pick<FieldCipher, 'blindIndex'>;
  /** When a soft bounce is retried. */
  softBounceRetryMs?: number;
  now?: () => Date;
  log?: Log;
}

export interface FeedbackProcessor extends Suppressions {
  /** Applies one report: suppress, requeue or just record. Returns what it understood. */
  process(raw: Buffer | string): Promise<FeedbackReport & { outboxId?: string }>;
}

interface SuppressionRow {
  id: string | number;
  reason: string;
  detail: string | null;
}

const describeSuppression = (hit: SuppressionRow) => `${hit.reason}${hit.detail ? ` ${hit.detail}` : ''}`;

const normalise = (address: string) => address.trim().toLowerCase();

export function createFeedbackProcessor(deps: FeedbackProcessorDeps): FeedbackProcessor {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? silentLog;
  return {
    async process(raw) {
      const report = parseFeedback(raw);
      const at = now();
      const [row] = report.originalMessageId ? await deps.db.query<{ id: unknown; patient_id: string }>(q.byMessageId, [report.originalMessageId]) : [];
      const outboxId = row ? String(row.id) : undefined;
      if (report.kind === 'hard-bounce' || report.kind === 'complaint') {
        const addressIndex = report.recipient ? deps.cipher.blindIndex('email', normalise(report.recipient)) : null;
        if (addressIndex || row) {
          await deps.db.query(q.insertSuppression, [addressIndex, row?.patient_id ?? null, report.kind, report.status ?? null, outboxId ?? null, at]);
        }
      } else if (report.kind === 'soft-bounce' && report.originalMessageId) {
        await deps.db.query(q.requeueSoftBounce, [report.originalMessageId, new Date(at.getTime() + (deps.softBounceRetryMs ?? 900_000)), `soft bounce ${report.status ?? ''}`.trim(), at]);
      }
      await deps.db.query(q.insertFeedback, [report.kind, outboxId ?? null, report.status ?? null, at]);
      log.info({ kind: report.kind, status: report.status ?? null, outboxId: outboxId ?? null }, 'delivery feedback');
      return { ...report, ...(outboxId ? { outboxId } : {}) };
    },
    async reasonFor(patientId, address) {
      const [hit] = await deps.db.query<SuppressionRow>(q.findSuppression, [deps.cipher.blindIndex('email', normalise(address)), patientId]);
      return hit && describeSuppression(hit);
    },
    async reasonsFor(recipients) {
      if (recipients.length === 0) return [];
      const indexes = recipients.map((r) => deps.cipher.blindIndex('email', normalise(r.address)));
      const rows = await deps.db.query<SuppressionRow & { address_index: Uint8Array | null; patient_id: string | null }>(q.findSuppressions, [
        indexes,
        [...new Set(recipients.map((r) => r.patientId))],
      ]);
      // Rows come oldest first: the first that applies wins, as in reasonFor.
      const byAddress = new Map<string, SuppressionRow>();
      const complaints = new Map<string, SuppressionRow>();
      for (const r of rows) {
        if (r.address_index) {
          const key = Buffer.from(r.address_index).toString('hex');
          if (!byAddress.has(key)) byAddress.set(key, r);
        }
        if (r.reason === 'complaint' && r.patient_id !== null && !complaints.has(r.patient_id)) complaints.set(r.patient_id, r);
      }
      return recipients.map((r, i) => {
        const a = byAddress.get(indexes[i]!.toString('hex'));
        const c = complaints.get(r.patientId);
        const hit = a && c ? (Number(a.id) <= Number(c.id) ? a : c) : (a ?? c);
        return hit && describeSuppression(hit);
      });
    },
  };
}

export interface BounceListenerOptions {
  processor: FeedbackProcessor;
  host?: string;
  port?: number;
  /** PEM key and certificate to offer STARTTLS (reports quote headers of sent mail). */
  key?: string;
  cert?: string;
  maxBytes?: number;
  log?: Log;
}

/** The inbound listener for the bounce address: every accepted message is read as a report. */
export async function startBounceListener(options: BounceListenerOptions): Promise<{ port: number; close: () => Promise<void> }> {
  const log = options.log ?? silentLog;
  const server = new SMTPServer({
    name: 'bounces',
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    size: options.maxBytes ?? 2 * 1024 * 1024,
    ...(options.key && options.cert ? { key: options.key, cert: options.cert } : { hideSTARTTLS: true, disabledCommands: ['STARTTLS'] }),
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if ((stream as { sizeExceeded?: boolean }).sizeExceeded) return cb(Object.assign(new Error('message too large'), { responseCode: 552 }));
        options.processor.process(Buffer.concat(chunks)).then(
          () => cb(),
          (err: Error) => {
            log.error({ err }, 'feedback report failed');
            cb(Object.assign(new Error('try again later'), { responseCode: 451 }));
          },
        );
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
