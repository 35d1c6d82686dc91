// User accounts: add, list, disable, passwords, sign-in with lockout after repeated failures, and the first admin.
import type { AuditLog } from '../audit/audit-log.js';
import { fail } from '../errors.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';
import { authorize, type Session } from './authorize.js';
import { checkPasswordStrength, defaultCost, generatePassword, hashPassword, verifyPassword, type ScryptCost } from './password.js';
import { isRole, type Operation, type Role } from './permissions.js';
import { SessionStore, type SessionPolicy } from './sessions.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertUser',
  'insertFirstAdmin',
  'userByName',
  'userById',
  'listUsers',
  'recordFailure',
  'recordSuccess',
  'setDisabled',
  'setPassword',
  'setRole',
  'otherActiveAdmins',
]);

export interface User {
  id: string;
  username: string;
  role: Role;
  mustChangePassword: boolean;
  failedLogins: number;
  lockedUntil: Date | null;
  disabledAt: Date | null;
  createdAt: Date;
  lastLoginAt: Date | null;
}

export interface LockoutPolicy {
  /** Failed sign-ins in a row that lock the account. */
  maxFailures: number;
  lockMinutes: number;
}

export interface UserDirectoryDeps {
  db: Db;
  audit: AuditLog;
  sessions: SessionPolicy;
  lockout?: LockoutPolicy;
  clock?: () => Date;
  /** scrypt cost; tests lower it. */
  passwordCost?: ScryptCost;
}

interface UserRow {
  id: string;
  username: string;
  role: string;
  password_params: string;
  password_salt: Uint8Array;
  password_hash: Uint8Array;
  must_change_password: boolean;
  failed_logins: number;
  locked_until: Date | null;
  disabled_at: Date | null;
  created_at: Date;
  last_login_at: Date | null;
}

const usernamePattern = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
export const firstAdminName = 'admin';

function normaliseUsername(username: string): string {
  const name = username.trim().toLowerCase();
  if (!usernamePattern.test(name)) {
    throw fail('BAD_REQUEST', 'a user name is 1-64 of a-z 0-9 . _ @ - and starts with a letter or digit', { field: 'username' });
  }
  return name;
}

const toUser = (r: Omit<UserRow, 'password_params' | 'password_salt' | 'password_hash'>): User => ({
  id: String(r.id),
  username: r.username,
  role: r.role as Role,
  mustChangePassword: r.must_change_password,
  failedLogins: Number(r.failed_logins),
  lockedUntil: r.locked_until,
  disabledAt: r.disabled_at,
  createdAt: r.created_at,
  lastLoginAt: r.last_login_at,
});

export class UserDirectory {
  readonly sessions: SessionStore;
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly lockout: LockoutPolicy;
  private readonly clock: () => Date;
  private readonly cost: ScryptCost;
  /** Hashed once, compared against when the user name is unknown so that a miss costs as much as a wrong password. */
  private decoy: ReturnType<typeof hashPassword> | undefined;

  constructor(deps: UserDirectoryDeps) {
    this.db = deps.db;
    this.audit = deps.audit;
    this.lockout = deps.lockout ?? { maxFailures: 5, lockMinutes: 15 };
    this.clock = deps.clock ?? (() => new Date());
    this.cost = deps.passwordCost ?? defaultCost;
    this.sessions = new SessionStore(deps.db, deps.sessions, this.clock);
  }

  /**
   * On a store without users, creates `admin` with a one-time password and returns it: the only time it exists
   * in plaintext (only its scrypt hash is stored). Returns undefined when any user exists.
   */
  async ensureFirstAdmin(): Promise<{ username: string; password: string } | undefined> {
    const password = generatePassword();
    const h = await hashPassword(password, this.cost);
    const [row] = await this.db.query<{ id: string }>(q.insertFirstAdmin, [firstAdminName, h.params, h.salt, h.hash, this.clock()]);
    if (!row) return undefined;
    await this.audit.append({ actor: 'system', role: 'system', action: 'user.create', purpose: 'administration', entity: `user/${row.id}` });
    return { username: firstAdminName, password };
  }

  /**
   * Adds a user. Without `password` a one-time password is generated and returned (the user must change it at
   * first sign-in); with one, it must be at least 12 characters.
   */
  async add(
    input: { username: string; role: Role; password?: string },
    actor: { name: string; role: string },
  ): Promise<{ user: User; oneTimePassword?: string }> {
    const username = normaliseUsername(input.username);
    if (!isRole(input.role)) throw fail('BAD_REQUEST', 'role must be admin, marketer or clinician', { field: 'role' });
    if (input.password !== undefined) checkPasswordStrength(input.password);
    const password = input.password ?? generatePassword();
    const h = await hashPassword(password, this.cost);
    const [row] = await this.db.query<{ id: string }>(q.insertUser, [
      username,
      input.role,
      h.params,
      h.salt,
      h.hash,
      input.password === undefined,
      this.clock(),
    ]);
    if (!row) throw fail('CONFLICT', 'a user with that name exists');
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.create', purpose: 'administration', entity: `user/${row.id}` });
    const user = (await this.byId(String(row.id)))!;
    return input.password === undefined ? { user, oneTimePassword: password } : { user };
  }

  async list(): Promise<User[]> {
    return (await this.db.query<UserRow>(q.listUsers)).map(toUser);
  }

  async byName(username: string): Promise<User | undefined> {
    const [row] = await this.db.query<UserRow>(q.userByName, [normaliseUsername(username)]);
    return row ? toUser(row) : undefined;
  }

  async byId(id: string): Promise<User | undefined> {
    const [row] = await this.db.query<UserRow>(q.userById, [id]);
    return row ? toUser(row) : undefined;
  }

  /** Disables an account and ends its sessions at once. */
  async disable(username: string, actor: { name: string; role: string }): Promise<User> {
    const [row] = await this.db.query<{ id: string }>(q.setDisabled, [normaliseUsername(username), this.clock()]);
    if (!row) throw fail('NOT_FOUND', 'no such user');
    await this.sessions.revokeAllFor(String(row.id));
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.disable', purpose: 'administration', entity: `user/${row.id}` });
    return (await this.byId(String(row.id)))!;
  }

  async enable(username: string, actor: { name: string; role: string }): Promise<User> {
    const [row] = await this.db.query<{ id: string }>(q.setDisabled, [normaliseUsername(username), null]);
    if (!row) throw fail('NOT_FOUND', 'no such user');
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.enable', purpose: 'administration', entity: `user/${row.id}` });
    return (await this.byId(String(row.id)))!;
  }

  /** An admin reset: a new one-time password (returned once), the lockout cleared, every session ended. */
  async resetPassword(username: string, actor: { name: string; role: string }): Promise<string> {
    const user = await this.byName(username);
    if (!user) throw fail('NOT_FOUND', 'no such user');
    const password = generatePassword();
    const h = await hashPassword(password, this.cost);
    await this.db.query(q.setPassword, [user.id, h.params, h.salt, h.hash, true]);
    await this.sessions.revokeAllFor(user.id);
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.reset-password', purpose: 'administration', entity: `user/${user.id}` });
    return password;
  }

  /**
   * Changes a user's role. Every session of the user ends (a token must not keep the old role's rights), and the last
   * active admin cannot be demoted. Setting the role a user already has changes nothing and writes no audit row.
   */
  async setRole(username: string, role: Role, actor: { name: string; role: string }): Promise<User> {
    if (!isRole(role)) throw fail('BAD_REQUEST', 'role must be admin, marketer or clinician', { field: 'role' });
    const user = await this.byName(username);
    if (!user) throw fail('NOT_FOUND', 'no such user');
    if (user.role === role) return user;
    if (user.role === 'admin' && !user.disabledAt) {
      const [others] = await this.db.query<{ n: number }>(q.otherActiveAdmins, [user.id]);
      if (Number(others?.n ?? 0) === 0) throw fail('CONFLICT', 'this is the last active admin: make another admin first', { field: 'role' });
    }
    await this.db.query(q.setRole, [user.id, role]);
    await this.sessions.revokeAllFor(user.id);
    // The entity names the new role (roles are not PHI) so the audit trail shows what the user became.
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.set-role', purpose: 'administration', entity: `user/${user.id}/role/${role}` });
    return (await this.byId(user.id))!;
  }

  /**
   * An admin sets a user's password (at least 12 characters). The admin knows it, so the user must change it at the
   * next sign-in; the lockout is cleared and every session of the user ends.
   */
  async setPassword(username: string, password: string, actor: { name: string; role: string }): Promise<User> {
    checkPasswordStrength(password);
    const user = await this.byName(username);
    if (!user) throw fail('NOT_FOUND', 'no such user');
    const h = await hashPassword(password, this.cost);
    await this.db.query(q.setPassword, [user.id, h.params, h.salt, h.hash, true]);
    await this.sessions.revokeAllFor(user.id);
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'user.set-password', purpose: 'administration', entity: `user/${user.id}` });
    return (await this.byId(user.id))!;
  }

  /** The signed-in user changes their own password; other sessions end, this one stays. */
  async changePassword(session: Session, current: string, next: string): Promise<void> {
    checkPasswordStrength(next);
    const [row] = await this.db.query<UserRow>(q.userById, [session.userId]);
    if (!row || !(await verifyPassword(current, { params: row.password_params, salt: asBuffer(row.password_salt), hash: asBuffer(row.password_hash) }))) {
      throw fail('LOGIN_FAILED', 'the current password is wrong');
    }
    if (current === next) throw fail('BAD_REQUEST', 'the new password must differ from the current one', { field: 'password' });
    const h = await hashPassword(next, this.cost);
    await this.db.query(q.setPassword, [session.userId, h.params, h.salt, h.hash, false]);
    await this.sessions.revokeAllFor(session.userId);
    await this.audit.append({ actor: row.username, role: row.role, action: 'user.change-password', purpose: 'administration', entity: `user/${row.id}` });
  }

  /**
   * Signs in. Wrong passwords count up; at `maxFailures` in a row the account locks for `lockMinutes`, during which
   * even the right password gets LOCKED_OUT. Unknown names fail the same way (and cost the same time) as wrong passwords.
   */
  async login(username: string, password: string): Promise<{ token: string; session: Session }> {
    const name = usernamePattern.test(username.trim().toLowerCase()) ? username.trim().toLowerCase() : undefined;
    const [row] = name ? await this.db.query<UserRow>(q.userByName, [name]) : [];
    const now = this.clock();
    if (!row) {
      this.decoy ??= hashPassword(generatePassword(), this.cost);
      await verifyPassword(password, await this.decoy);
      await this.audit.append({ actor: 'unknown', role: 'none', action: 'session.login', outcome: 'failure' });
      throw fail('LOGIN_FAILED', 'wrong user name or password');
    }
    const who = { actor: row.username, role: row.role, action: 'session.login', entity: `user/${row.id}` };
    if (row.locked_until && row.locked_until.getTime() > now.getTime()) {
      await this.audit.append({ ...who, outcome: 'denied' });
      throw fail('LOCKED_OUT', 'too many failed sign-ins: the account is locked for a while', {
        retryAfterSeconds: Math.ceil((row.locked_until.getTime() - now.getTime()) / 1000),
      });
    }
    const ok = await verifyPassword(password, { params: row.password_params, salt: asBuffer(row.password_salt), hash: asBuffer(row.password_hash) });
    if (!ok) {
      const lockUntil = new Date(now.getTime() + this.lockout.lockMinutes * 60_000);
      const [after] = await this.db.query<{ locked_until: Date | null }>(q.recordFailure, [row.id, this.lockout.maxFailures, lockUntil]);
      await this.audit.append({ ...who, outcome: 'failure' });
      if (after?.locked_until && after.locked_until.getTime() > now.getTime()) {
        throw fail('LOCKED_OUT', 'too many failed sign-ins: the account is locked for a while', {
          retryAfterSeconds: this.lockout.lockMinutes * 60,
        });
      }
      throw fail('LOGIN_FAILED', 'wrong user name or password');
    }
    if (row.disabled_at) {
      await this.audit.append({ ...who, outcome: 'denied' });
      throw fail('USER_DISABLED', 'the user account is disabled');
    }
    await this.db.query(q.recordSuccess, [row.id, now]);
    const issued = await this.sessions.issue({ id: String(row.id), username: row.username, role: row.role, mustChangePassword: row.must_change_password });
    await this.audit.append({ ...who, outcome: 'success' });
    return issued;
  }

  /**
   * The one call an API route makes: resolves the bearer token (extending its idle window) and checks the role.
   * Throws UNAUTHENTICATED, SESSION_EXPIRED, USER_DISABLED or FORBIDDEN.
   */
  async authenticate(token: string | undefined, operation: Operation): Promise<Session> {
    return authorize(await this.sessions.resolve(token), operation, this.clock());
  }

  /** Ends the session of `token`; unknown tokens are ignored. */
  async logout(token: string): Promise<void> {
    const userId = await this.sessions.revoke(token);
    if (!userId) return;
    const user = await this.byId(userId);
    if (user) await this.audit.append({ actor: user.username, role: user.role, action: 'session.logout', entity: `user/${user.id}` });
  }
}
