// Sessions: opaque random bearer tokens stored only as SHA-256, with an idle timeout and an absolute lifetime.
import { createHash, randomBytes } from 'node:crypto';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';
import type { Session } from './authorize.js';
import { isRole } from './permissions.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertSession',
  'sessionByToken',
  'touchSession',
  'revokeSession',
  'revokeUserSessions',
]);

export interface SessionPolicy {
  idleMinutes: number;
  absoluteHours: number;
  /**
   * How stale the stored `last_seen_at` may get before a request writes it again (default: 30 s or a tenth of the
   * idle timeout, whichever is shorter). Writing it on every request was the biggest per-request cost of the API.
   */
  touchSeconds?: number;
}

/** The default touch interval: 30 s, or a tenth of the idle timeout when that is shorter. */
export function touchIntervalMs(policy: SessionPolicy): number {
  const idleMs = policy.idleMinutes * 60_000;
  return Math.max(0, Math.min(policy.touchSeconds !== undefined ? policy.touchSeconds * 1000 : 30_000, idleMs / 10));
}

interface SessionRow {
  id: string;
  user_id: string;
  created_at: Date;
  last_seen_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  username: string;
  role: string;
  disabled_at: Date | null;
  must_change_password: boolean;
}

const tokenPrefix = 'os_';
const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly policy: SessionPolicy,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private get idleMs(): number {
    return this.policy.idleMinutes * 60_000;
  }

  private get touchMs(): number {
    return touchIntervalMs(this.policy);
  }

  /** Starts a session; the token is returned once and only its hash is stored. */
  async issue(user: { id: string; username: string; role: string; mustChangePassword: boolean }): Promise<{ token: string; session: Session }> {
    if (!isRole(user.role)) throw fail('INTERNAL', 'stored role is unknown');
    const now = this.clock();
    const token = tokenPrefix + randomBytes(32).toString('base64url');
    const absoluteExpiresAt = new Date(now.getTime() + this.policy.absoluteHours * 3_600_000);
    const [row] = await this.db.query<{ id: string }>(q.insertSession, [tokenHash(token), user.id, now, absoluteExpiresAt]);
    return {
      token,
      session: {
        id: String(row!.id),
        userId: user.id,
        username: user.username,
        role: user.role,
        createdAt: now,
        lastSeenAt: now,
        idleExpiresAt: this.idleEnd(now, absoluteExpiresAt),
        absoluteExpiresAt,
        mustChangePassword: user.mustChangePassword,
      },
    };
  }

  /**
   * Looks a token up and, when it is live, extends its idle window. Throws UNAUTHENTICATED for an unknown or
   * revoked token, USER_DISABLED for a disabled account, SESSION_EXPIRED past the idle or absolute end.
   *
   * The stored `last_seen_at` is written only when it is at least the touch interval T old (`touchIntervalMs`), so a
   * busy session costs one UPDATE per T instead of one per request. The bound: the idle end is measured from the last
   * stored touch, which is at most T before the last real use, so a session idles out after between (idle - T) and
   * idle of inactivity: never later than the policy, at most T early (30 s of a 15-minute timeout by default).
   * Revocation, disabling and the absolute end are read from the store on every request and stay exact.
   */
  async resolve(token: string | undefined): Promise<Session> {
    if (!token || !token.startsWith(tokenPrefix) || token.length > 128) throw fail('UNAUTHENTICATED', 'sign in first');
    const [row] = await this.db.query<SessionRow>(q.sessionByToken, [tokenHash(token)]);
    if (!row || row.revoked_at) throw fail('UNAUTHENTICATED', 'the session is not valid: sign in again');
    if (row.disabled_at) throw fail('USER_DISABLED', 'the user account is disabled');
    if (!isRole(row.role)) throw fail('INTERNAL', 'stored role is unknown');
    const now = this.clock();
    if (now.getTime() >= row.absolute_expires_at.getTime() || now.getTime() - row.last_seen_at.getTime() >= this.idleMs) {
      throw fail('SESSION_EXPIRED', 'the session timed out: sign in again');
    }
    const stale = now.getTime() - row.last_seen_at.getTime() >= this.touchMs;
    if (stale) await this.db.query(q.touchSession, [row.id, now]);
    const seen = stale ? now : row.last_seen_at;
    return {
      id: String(row.id),
      userId: String(row.user_id),
      username: row.username,
      role: row.role,
      createdAt: row.created_at,
      lastSeenAt: now,
      idleExpiresAt: this.idleEnd(seen, row.absolute_expires_at),
      absoluteExpiresAt: row.absolute_expires_at,
      mustChangePassword: row.must_change_password,
    };
  }

  /** Ends one session (logout). Returns the user id when a live session was ended. */
  async revoke(token: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ user_id: string }>(q.revokeSession, [tokenHash(token), this.clock()]);
    return row ? String(row.user_id) : undefined;
  }

  /** Ends every session of a user (disable, password change). */
  async revokeAllFor(userId: string): Promise<void> {
    await this.db.query(q.revokeUserSessions, [userId, this.clock()]);
  }

  private idleEnd(now: Date, absolute: Date): Date {
    return new Date(Math.min(now.getTime() + this.idleMs, absolute.getTime()));
  }
}
