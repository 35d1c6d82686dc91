// Browser sessions of the SMART app: an opaque cookie value stored only as SHA-256, bound to one launch, ending with the EHR's access token (and when idle).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail } from '../errors.js';
import type { FieldCipher } from '../store/cipher.js';
import { loadQueries, type Db } from '../store/db.js';
import type { Session } from '../users/authorize.js';
import { isRole } from '../users/permissions.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertSession', 'sessionByToken', 'touchSession', 'revokeSession'] as const);

const tokenPrefix = 'sm_';
export const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** Who launched the app and what they may do. */
export interface SmartSession {
  id: string;
  ehrId: string;
  ehrName: string;
  /** `Practitioner/<id>` of the EHR. */
  practitioner: string;
  /** The launch's `iss` (the EHR's FHIR base). */
  iss: string;
  kind: 'ehr' | 'standalone';
  /** The clinician account the practitioner is linked to; null when linked to none (the app shows who it is, nothing more). */
  user: { id: string; username: string; role: string } | null;
  createdAt: Date;
  expiresAt: Date;
  /** The connector session of the linked account, carrying the EHR identity into approvals; null when not linked. */
  session: Session | null;
  /** The anti-forgery token the page sends back on every state-changing request. */
  csrf: string;
}

export interface NewSmartSession {
  ehrId: string;
  practitioner: string;
  iss: string;
  userId: string | null;
  accessToken: string;
  scope: string;
  kind: 'ehr' | 'standalone';
  expiresAt: Date;
}

interface Row {
  id: string;
  ehr_id: string;
  practitioner: string;
  iss: string;
  user_id: string | null;
  kind: 'ehr' | 'standalone';
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  ehr_name: string;
  ehr_disabled_at: Date | null;
  username: string | null;
  role: string | null;
  user_disabled_at: Date | null;
}

const csrfOf = (token: string) => createHash('sha256').update(`csrf\0${token}`, 'utf8').digest('base64url');

export class SmartSessions {
  constructor(
    private readonly deps: { db: Db; cipher: FieldCipher; idleMinutes: number; clock?: () => Date },
  ) {}

  private now(): Date {
    return this.deps.clock?.() ?? new Date();
  }

  /** Starts a session after a validated launch; the cookie value is returned once. The access token is sealed. */
  async issue(input: NewSmartSession): Promise<{ token: string; expiresAt: Date }> {
    const token = tokenPrefix + randomBytes(32).toString('base64url');
    const hash = tokenHash(token);
    const sealed = this.deps.cipher.seal(input.accessToken, { table: 'smart_sessions', column: 'access_token_sealed', rowId: hash.toString('hex') });
    await this.deps.db.query(q.insertSession, [
      hash, input.ehrId, input.practitioner, input.iss, input.userId, sealed, input.scope, input.kind, this.now(), input.expiresAt,
    ]);
    return { token, expiresAt: input.expiresAt };
  }

  /**
   * The live session of a cookie value. UNAUTHENTICATED without one or for an unknown, revoked or disabled one;
   * SESSION_EXPIRED once the launch's token expired or the session sat idle. Extends the idle window.
   */
  async resolve(token: string | undefined): Promise<SmartSession> {
    if (!token || !token.startsWith(tokenPrefix) || token.length > 128) throw fail('UNAUTHENTICATED', 'launch the app from the EHR first');
    const [row] = await this.deps.db.query<Row>(q.sessionByToken, [tokenHash(token)]);
    if (!row || row.revoked_at || row.ehr_disabled_at) throw fail('UNAUTHENTICATED', 'this app session has ended: launch the app from the EHR again');
    const now = this.now();
    const expiresAt = new Date(row.expires_at);
    const idleEnd = new Date(new Date(row.last_seen_at).getTime() + this.deps.idleMinutes * 60_000);
    if (now >= expiresAt || now >= idleEnd) throw fail('SESSION_EXPIRED', 'the EHR launch expired: launch the app from the EHR again');
    if (row.user_id && row.user_disabled_at) throw fail('USER_DISABLED', 'the clinician account linked to this practitioner is disabled');
    await this.deps.db.query(q.touchSession, [row.id, now]);
    let user: SmartSession['user'] = null;
    let session: Session | null = null;
    if (row.user_id && row.username && row.role && !row.user_disabled_at && isRole(row.role)) {
      user = { id: String(row.user_id), username: row.username, role: row.role };
      session = {
        id: `smart-${row.id}`,
        userId: user.id,
        username: row.username,
        role: row.role,
        createdAt: new Date(row.created_at),
        lastSeenAt: now,
        idleExpiresAt: new Date(Math.min(now.getTime() + this.deps.idleMinutes * 60_000, expiresAt.getTime())),
        absoluteExpiresAt: expiresAt,
        // The EHR authenticated this clinician; the account's own password plays no part here.
        mustChangePassword: false,
        ehrIdentity: { practitioner: row.practitioner, iss: row.iss },
      };
    }
    return {
      id: String(row.id),
      ehrId: String(row.ehr_id),
      ehrName: row.ehr_name,
      practitioner: row.practitioner,
      iss: row.iss,
      kind: row.kind,
      user,
      createdAt: new Date(row.created_at),
      expiresAt,
      session,
      csrf: csrfOf(token),
    };
  }

  /** True when `sent` is the anti-forgery token of the session's cookie. */
  checkCsrf(token: string, sent: string | undefined): boolean {
    const want = Buffer.from(csrfOf(token));
    const got = Buffer.from(sent ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  async revoke(token: string): Promise<boolean> {
    const [row] = await this.deps.db.query(q.revokeSession, [tokenHash(token), this.now()]);
    return Boolean(row);
  }
}
