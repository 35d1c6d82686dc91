// The PHI-free notice that points a recipient to the escrow portal instead of carrying the message.
import type { OutboxMessage } from './outbox.js';
import type { RenderedMessage } from './mime.js';

/** Where the full message is kept for the recipient (the escrow portal implements it). */
export interface EscrowDesk {
  /** Seals the rendered message for the portal and returns the opaque link to put in the notice. */
  deposit(message: OutboxMessage, rendered: RenderedMessage, at: Date): Promise<{ url: string; expiresAt: Date }>;
}

export interface NoticeOptions {
  /** The organisation's display name (never the patient's, never a clinical word). */
  senderName: string;
  /** The From address of notices. */
  from: string;
}

/**
 * The notice names only the sender organisation, the link and its expiry: no subject of the original, no
 * name, no clinical word. Its subject is fixed so that nothing of the campaign leaks either.
 */
export function composeNotice(to: string, link: { url: string; expiresAt: Date }, options: NoticeOptions): RenderedMessage {
  const expires = link.expiresAt.toISOString().slice(0, 10);
  const text = [
    `You have a secure message from ${options.senderName}.`,
    '',
    'For your privacy it is not included in this email. Open it here:',
    link.url,
    '',
    `The link works until ${expires}. You will be asked for a one-time code we email you and your date of birth.`,
  ].join('\n');
  const html = `<p>You have a secure message from ${escapeHtml(options.senderName)}.</p><p>For your privacy it is not included in this email.</p><p><a href="${escapeHtml(link.url)}">Open the secure message</a></p><p>The link works until ${expires}. You will be asked for a one-time code we email you and your date of birth.</p>`;
  return { from: options.from, to, subject: `Secure message from ${options.senderName}`, text, html, phiFree: true };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
