// Builds the wire form of one message in memory, in one pass over strings (no streams): RFC 5322 headers with RFC 2047 words, quoted-printable parts, RFC 8058 unsubscribe headers, then DKIM.
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import { encodeWord, encodeWords, foldLines } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import { fail } from '../errors.js';
import type { DkimSigner } from './dkim.js';

/** What `render(message)` produces at dispatch: plaintext lives only in memory, only for this send. */
export interface RenderedMessage {
  from: string;
  /** One recipient address. */
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** True only when the PHI scan cleared the content and no PHI merge tag touched it. */
  phiFree: boolean;
  replyTo?: string;
}

export interface WireOptions {
  messageId: string;
  /** One-click unsubscribe URL (RFC 8058); marketing mail must carry it. */
  unsubscribeUrl?: string;
  /** Extra headers (tracking ids and the like), never PHI. */
  headers?: Record<string, string>;
  date?: Date;
}

/** Anything but printable US-ASCII and tab needs an encoded word. */
const needsEncoding = /[^\x20-\x7e\t]/;
/** RFC 5322 `atext` plus space: a display name made only of these needs no quotes (a dot does). */
const atomText = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/;
const headerName = /^[!-9;-~]+$/;

/** A header value with CR and LF removed (header injection), as RFC 2047 words when it is not ASCII. */
function text(value: string): string {
  const flat = value.replace(/[\r\n]+/g, ' ').trim();
  return needsEncoding.test(flat) ? encodeWords(flat, 'Q', 52) : flat;
}

/** `name: value`, folded at 76 characters. */
function header(name: string, value: string): string {
  return foldLines(`${name}: ${value}`, 76);
}

/** `Name <local@domain>` with the name quoted or encoded and the domain in ASCII (IDNA). */
function mailbox(value: string, field: string): string {
  const [first] = addressparser(value.replace(/[\r\n]+/g, ' ')) as Array<{ name?: string; address?: string }>;
  const address = first?.address?.trim();
  const at = address ? address.lastIndexOf('@') : -1;
  if (!address || at < 1) throw fail('BAD_REQUEST', `${field} is not an email address`, { field });
  const local = address.slice(0, at);
  const domain = domainToASCII(address.slice(at + 1));
  if (!domain || needsEncoding.test(local) || /[\s<>]/.test(local)) throw fail('BAD_REQUEST', `${field} cannot be sent without SMTPUTF8`, { field });
  const name = (first?.name ?? '').trim();
  if (!name) return `${local}@${domain}`;
  const shown = needsEncoding.test(name) ? encodeWord(name, 'Q', 52) : atomText.test(name) ? name : `"${name.replace(/["\\]/g, '\\$&')}"`;
  return `${shown} <${local}@${domain}>`;
}

/** RFC 5322 date in UTC. */
function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** A body as quoted-printable with CRLF line ends and soft breaks at 76 columns. */
function qp(body: string): string {
  return qpWrap(qpEncode(body.replace(/\r?\n/g, '\r\n')), 76);
}

function part(type: string, body: string): string {
  return `Content-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp(body)}`;
}

/** "=_" never occurs in quoted-printable output, so no body can contain the boundary. */
const boundaryPrefix = `=_outreach_${randomBytes(6).toString('hex')}_`;
let boundaryCount = 0;

/** The MIME message, signed when a signer is given. */
export async function buildWireMessage(message: RenderedMessage, options: WireOptions, dkim?: DkimSigner): Promise<Buffer> {
  const lines = [
    header('From', mailbox(message.from, 'from')),
    header('To', mailbox(message.to, 'to')),
    ...(message.replyTo ? [header('Reply-To', mailbox(message.replyTo, 'replyTo'))] : []),
    header('Subject', text(message.subject)),
    header('Message-ID', options.messageId.replace(/[\r\n\s]+/g, '')),
    header('Date', rfc5322Date(options.date ?? new Date())),
    'MIME-Version: 1.0',
  ];
  if (options.unsubscribeUrl) {
    lines.push(header('List-Unsubscribe', `<${options.unsubscribeUrl.replace(/[\r\n\s<>]+/g, '')}>`), 'List-Unsubscribe-Post: List-Unsubscribe=One-Click');
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (!headerName.test(name)) throw fail('BAD_REQUEST', `header name ${JSON.stringify(name.slice(0, 40))} is not valid`, { field: 'headers' });
    lines.push(header(name, text(value)));
  }
  let body: string;
  if (message.html) {
    const boundary = `${boundaryPrefix}${(++boundaryCount).toString(36)}`;
    lines.push(`Content-Type: multipart/alternative;\r\n boundary="${boundary}"`);
    body = `--${boundary}\r\n${part('text/plain', message.text)}\r\n--${boundary}\r\n${part('text/html', message.html)}\r\n--${boundary}--\r\n`;
  } else {
    lines.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable');
    body = `${qp(message.text)}\r\n`;
  }
  const raw = Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
  return dkim ? dkim.sign(raw) : raw;
}
