// One-click unsubscribe (RFC 8058): sealed opaque tokens for List-Unsubscribe, and the POST handler that records the opt-out and cancels queued marketing mail.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { fail } from '../errors.js';
import type { Outbox, OutboxMessage } from './outbox.js';

/** What a token stands for; none of it is PHI, and none of it is readable from the token. */
export interface UnsubscribeClaim {
  patientId: string;
  campaignId: string;
  purpose: string;
  channel: string;
  /** Seconds since the epoch when the token was issued. */
  issuedAt: number;
}

export interface UnsubscribeTokens {
  issue(claim: Omit<UnsubscribeClaim, 'issuedAt'>, at?: Date): string;
  /** Opens a token; UNSUBSCRIBE_TOKEN_INVALID when it is malformed, forged or altered. */
  open(token: string): UnsubscribeClaim;
}

const VERSION = 1;

/**
 * Tokens are AES-256-GCM sealed (key derived from the secret): the GCM tag is the signature, and the
 * sealing keeps the internal patient id out of the URL. They do not expire: RFC 8058 links must keep
 * working for as long as the mail sits in an inbox.
 */
export function createUnsubscribeTokens(secret: Buffer): UnsubscribeTokens {
  if (secret.length < 32) throw fail('INVALID_CONFIG', 'unsubscribe secret must be at least 32 bytes');
  const key = createHash('sha256').update('outreach/unsubscribe/v1').update(secret).digest();
  return {
    issue(claim, at = new Date()) {
      const body = JSON.stringify([claim.patientId, claim.campaignId, claim.purpose, claim.channel, Math.floor(at.getTime() / 1000)]);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from([VERSION]));
      const sealed = Buffer.concat([cipher.update(body, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, sealed, cipher.getAuthTag()]).toString('base64url');
    },
    open(token) {
      const raw = /^[A-Za-z0-9_-]{20,400}$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.alloc(0);
      if (raw.length < 1 + 12 + 16 + 2 || raw[0] !== VERSION) throw fail('UNSUBSCRIBE_TOKEN_INVALID');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 13));
        decipher.setAAD(Buffer.from([VERSION]));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const body = Buffer.concat([decipher.update(raw.subarray(13, raw.length - 16)), decipher.final()]).toString('utf8');
        const [patientId, campaignId, purpose, channel, issuedAt] = JSON.parse(body) as [string, string, string, string, number];
        return { patientId, campaignId, purpose, channel, issuedAt };
      } catch {
        throw fail('UNSUBSCRIBE_TOKEN_INVALID');
      }
    },
  };
}

/** Records the opt-out where consent lives (the registry's revoke with source 'unsubscribe-link'). */
export type RecordOptOut = (claim: UnsubscribeClaim, token: string, at: Date) => Promise<void>;

export interface UnsubscribeDeps {
  tokens: UnsubscribeTokens;
  outbox: Outbox;
  recordOptOut: RecordOptOut;
  /** Base URL of the public routes, e.g. https://outreach.example.org */
  publicUrl: string;
  now?: () => Date;
}

export interface UnsubscribeResult {
  status: number;
  /** Messages cancelled in the outbox. */
  cancelled: number;
}

export interface Unsubscribe {
  /** The List-Unsubscribe URL of a message (marketing mail). */
  urlFor(message: OutboxMessage): string;
  /** RFC 8058 one-click POST: body `List-Unsubscribe=One-Click`. Idempotent. */
  handlePost(token: string, body: string): Promise<UnsubscribeResult>;
  /** A GET (a person clicking, or a scanner prefetching) only confirms the token; it never unsubscribes. */
  handleGet(token: string): { status: number; purpose: string };
}

export function createUnsubscribe(deps: UnsubscribeDeps): Unsubscribe {
  const now = deps.now ?? (() => new Date());
  const base = deps.publicUrl.replace(/\/$/, '');
  return {
    urlFor(message) {
      return `${base}/u/${deps.tokens.issue({ patientId: message.patientId, campaignId: message.campaignId, purpose: message.purpose, channel: message.channel })}`;
    },
    async handlePost(token, body) {
      const claim = deps.tokens.open(token);
      const params = new URLSearchParams(body);
      if (params.get('List-Unsubscribe') !== 'One-Click') throw fail('BAD_REQUEST', 'body must be List-Unsubscribe=One-Click', { field: 'List-Unsubscribe' });
      const at = now();
      await deps.recordOptOut(claim, token, at);
      const cancelled = await deps.outbox.cancelQueued({ patientId: claim.patientId, purpose: claim.purpose, channel: claim.channel }, 'unsubscribed (one-click)');
      return { status: 200, cancelled };
    },
    handleGet(token) {
      const claim = deps.tokens.open(token);
      return { status: 200, purpose: claim.purpose };
    },
  };
}
