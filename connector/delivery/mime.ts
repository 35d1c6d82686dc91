// Builds the wire form of one message in memory: MIME via nodemailer's composer, a stable Message-ID, RFC 8058 unsubscribe headers, then DKIM.
import MailComposer from 'nodemailer/lib/mail-composer';
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

/** The MIME message, signed when a signer is given. */
export async function buildWireMessage(message: RenderedMessage, options: WireOptions, dkim?: DkimSigner): Promise<Buffer> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.unsubscribeUrl) {
    headers['List-Unsubscribe'] = `<${options.unsubscribeUrl}>`;
    headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
  }
  const composer = new MailComposer({
    from: message.from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    ...(message.html ? { html: message.html } : {}),
    ...(message.replyTo ? { replyTo: message.replyTo } : {}),
    messageId: options.messageId,
    date: options.date ?? new Date(),
    headers,
  });
  const raw = await composer.compile().build();
  return dkim ? dkim.sign(raw) : raw;
}
