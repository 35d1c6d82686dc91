// Users and sessions: first admin, scrypt passwords, lockout, idle and absolute expiry on an injected clock, logout, disable.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../../connector/audit/audit-log.js';
import { authorize } from '../../../connector/users/authorize.js';
import { hashPassword, verifyPassword } from '../../../connector/users/password.js';
import { UserDirectory } from '../../../connector/users/users.js';
import type { Db } from '../../../connector/store/db.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';
import { truncateTables } from '../../support/truncate-tables.js';

const minute = 60_000;
const t0 = new Date('2026-06-01T08:00:00.000Z');
const cheap = { N: 2 ** 10, r: 8, p: 1 };
const admin = { name: 'ada', role: 'admin' };

describe('password hashing', () => {
  it('uses scrypt with a per-user salt and accepts only the right password', async () => {
    const a = await hashPassword('correct horse battery', cheap);
    const b = await hashPassword('correct horse battery', cheap);
    expect(a.params).toBe('scrypt$1024$8$1');
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.hash.equals(b.hash)).toBe(false);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    // The default cost verifies what it hashed (and keeps its parameters with the hash).
    const strong = await hashPassword('another long passphrase');
    expect(strong.params).toBe('scrypt$32768$8$1');
    expect(await verifyPassword('another long passphrase', strong)).toBe(true);
  });
});

describe.each(storeKinds)('users and sessions on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let db: Db;
  let audit: AuditLog;
  let users: UserDirectory;
  let now: Date;
  const at = (ms: number) => (now = new Date(t0.getTime() + ms));

  beforeAll(async () => {
    store = await openTestStore(kind);
    db = store.db;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await truncateTables(db, ['sessions', 'users', 'audit_log']);
    now = t0;
    audit = createAuditLog({ db, cipher: createTestCipher(), clock: () => now });
    users = new UserDirectory({
      db,
      audit,
      sessions: { idleMinutes: 15, absoluteHours: 1 },
      lockout: { maxFailures: 5, lockMinutes: 10 },
      clock: () => now,
      passwordCost: cheap,
    });
  });

  it('creates the first admin once, with a one-time password that is never stored and must be changed first', async () => {
    const created = await users.ensureFirstAdmin();
    expect(created).toMatchObject({ username: 'admin' });
    expect(created!.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await users.ensureFirstAdmin()).toBeUndefined();
    expect(JSON.stringify(await db.query(`SELECT encode(password_hash, 'escape') AS h, encode(password_salt, 'escape') AS s, * FROM users`))).not.toContain(created!.password);

    const { token, session } = await users.login('admin', created!.password);
    expect(session).toMatchObject({ role: 'admin', mustChangePassword: true });
    expect(() => authorize(session, 'users.write', now)).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    await users.changePassword(session, created!.password, 'a brand new admin passphrase');
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(users.login('admin', created!.password)).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    const again = await users.login('admin', 'a brand new admin passphrase');
    expect(again.session.mustChangePassword).toBe(false);
    expect(authorize(again.session, 'users.write', now).username).toBe('admin');
  });

  it('says at sign-in whether the password is a one-time one: a new account\'s and a reset one are, a chosen one is not', async () => {
    const { oneTimePassword } = await users.add({ username: 'mara', role: 'marketer' }, admin);
    const first = await users.login('mara', oneTimePassword!);
    expect(first.session.mustChangePassword).toBe(true);
    // The session resolved from the token says the same, so every later call is held to it.
    expect((await users.sessions.resolve(first.token)).mustChangePassword).toBe(true);
    await users.changePassword(first.session, oneTimePassword!, 'mara chose this passphrase');
    const chosen = await users.login('mara', 'mara chose this passphrase');
    expect(chosen.session.mustChangePassword).toBe(false);
    expect((await users.sessions.resolve(chosen.token)).mustChangePassword).toBe(false);
    await users.add({ username: 'cleo', role: 'clinician', password: 'clinician passphrase 1' }, admin);
    expect((await users.login('cleo', 'clinician passphrase 1')).session.mustChangePassword).toBe(false);
  });

  it('creates exactly one first admin when several processes start at once', async () => {
    const results = await Promise.all([users.ensureFirstAdmin(), users.ensureFirstAdmin(), users.ensureFirstAdmin()]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await users.list()).map((u) => u.username)).toEqual(['admin']);
  });

  it('adds, lists and disables users; a disabled user is signed out and cannot sign in', async () => {
    const { user, oneTimePassword } = await users.add({ username: 'Mara.Marketer', role: 'marketer' }, admin);
    expect(user).toMatchObject({ username: 'mara.marketer', role: 'marketer', mustChangePassword: true });
    expect(oneTimePassword).toBeTruthy();
    await users.add({ username: 'cleo', role: 'clinician', password: 'clinician passphrase 1' }, admin);
    await expect(users.add({ username: 'cleo', role: 'admin' }, admin)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(users.add({ username: 'Jane Doe', role: 'admin' }, admin)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(users.add({ username: 'x', role: 'owner' as 'admin' }, admin)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(users.add({ username: 'shorty', role: 'admin', password: 'short' }, admin)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect((await users.list()).map((u) => [u.username, u.role])).toEqual([
      ['cleo', 'clinician'],
      ['mara.marketer', 'marketer'],
    ]);

    const { token, session } = await users.login('cleo', 'clinician passphrase 1');
    expect(authorize(session, 'campaigns.approve', now).role).toBe('clinician');
    await users.disable('cleo', admin);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(users.login('cleo', 'clinician passphrase 1')).rejects.toMatchObject({ code: 'USER_DISABLED' });
    await users.enable('cleo', admin);
    expect((await users.login('cleo', 'clinician passphrase 1')).session.role).toBe('clinician');
  });

  it('locks an account after repeated failures, even against the right password, until the lock passes', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    for (let i = 1; i <= 4; i++) await expect(users.login('mara', `guess ${i}`)).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    await expect(users.login('mara', 'guess 5')).rejects.toMatchObject({ code: 'LOCKED_OUT', status: 429 });
    at(9 * minute);
    await expect(users.login('mara', 'marketer passphrase 1')).rejects.toMatchObject({ code: 'LOCKED_OUT' });
    at(10 * minute);
    expect((await users.login('mara', 'marketer passphrase 1')).session.username).toBe('mara');
    expect((await users.byName('mara'))).toMatchObject({ failedLogins: 0, lockedUntil: null });
    // A success resets the count: four more failures do not lock.
    for (let i = 1; i <= 4; i++) await expect(users.login('mara', `again ${i}`)).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect((await users.login('mara', 'marketer passphrase 1')).session.username).toBe('mara');
  });

  it('answers an unknown user exactly like a wrong password, and audits every attempt', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    await expect(users.login('nobody', 'whatever it is')).rejects.toMatchObject({ code: 'LOGIN_FAILED', message: 'wrong user name or password' });
    await expect(users.login('mara', 'wrong one')).rejects.toMatchObject({ code: 'LOGIN_FAILED', message: 'wrong user name or password' });
    await users.login('mara', 'marketer passphrase 1');
    const rows = [];
    for await (const r of audit.search({ actionPrefix: 'session.' })) rows.push([r.actor, r.outcome]);
    expect(rows).toEqual([
      ['unknown', 'failure'],
      ['mara', 'failure'],
      ['mara', 'success'],
    ]);
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  it('stores only the SHA-256 of a session token', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    const rows = await db.query<{ token_hash: Uint8Array }>('SELECT token_hash FROM sessions');
    expect(rows).toHaveLength(1);
    expect(Buffer.from(rows[0]!.token_hash).toString('hex')).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(await db.query(`SELECT encode(token_hash, 'escape') AS t, * FROM sessions`))).not.toContain(token.slice(3, 20));
    await expect(users.sessions.resolve(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(users.sessions.resolve(undefined)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('expires a session after 15 idle minutes, and keeps it alive while it is used', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    at(15 * minute - 1);
    const s = await users.sessions.resolve(token);
    expect(s.idleExpiresAt.toISOString()).toBe(new Date(now.getTime() + 15 * minute).toISOString());
    expect(authorize(s, 'segments.write', now).username).toBe('mara');
    at(30 * minute - 2);
    await users.sessions.resolve(token);
    at(45 * minute - 2);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'SESSION_EXPIRED', status: 401 });
    expect(() => authorize(s, 'segments.write', now)).toThrow(expect.objectContaining({ code: 'SESSION_EXPIRED' }));
  });

  it('writes last_seen at most every 30 s, so a session idles out at most 30 s early and never late', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    const stored = async () => (await db.query<{ last_seen_at: Date }>('SELECT last_seen_at FROM sessions'))[0]!.last_seen_at.toISOString();
    // Requests within 30 s of the stored touch read the session and write nothing.
    for (const s of [1, 10, 29]) {
      at(s * 1000);
      const live = await users.sessions.resolve(token);
      expect(live.idleExpiresAt.toISOString()).toBe(new Date(t0.getTime() + 15 * minute).toISOString());
    }
    expect(await stored()).toBe(t0.toISOString());
    // At 30 s the touch is due: stored and reported idle end move to this request.
    at(30_000);
    expect((await users.sessions.resolve(token)).idleExpiresAt.toISOString()).toBe(new Date(t0.getTime() + 30_000 + 15 * minute).toISOString());
    expect(await stored()).toBe(new Date(t0.getTime() + 30_000).toISOString());
    // Last real use at 59 s (not written); the session ends 15 minutes after the stored 30 s: 29 s early, inside the bound.
    at(59_000);
    await users.sessions.resolve(token);
    expect(await stored()).toBe(new Date(t0.getTime() + 30_000).toISOString());
    at(30_000 + 15 * minute);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
  });

  it('still ends a revoked or disabled session on the very next request, touch or not', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const one = await users.login('mara', 'marketer passphrase 1');
    const two = await users.login('mara', 'marketer passphrase 1');
    at(1000);
    await users.sessions.resolve(one.token);
    await users.logout(one.token);
    await expect(users.sessions.resolve(one.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await users.disable('mara', admin);
    await expect(users.sessions.resolve(two.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('ends a session at its absolute lifetime however busy it is', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token, session } = await users.login('mara', 'marketer passphrase 1');
    expect(session.absoluteExpiresAt.toISOString()).toBe('2026-06-01T09:00:00.000Z');
    for (let m = 10; m < 60; m += 10) {
      at(m * minute);
      await users.sessions.resolve(token);
    }
    at(60 * minute - 1);
    const last = await users.sessions.resolve(token);
    expect(last.idleExpiresAt.toISOString()).toBe('2026-06-01T09:00:00.000Z');
    at(60 * minute);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
  });

  it('authenticates a bearer token for an operation in one call', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    expect((await users.authenticate(token, 'campaigns.send')).username).toBe('mara');
    await expect(users.authenticate(token, 'campaigns.approve')).rejects.toMatchObject({ code: 'FORBIDDEN', status: 403 });
    await expect(users.authenticate(undefined, 'campaigns.send')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    at(16 * minute);
    await expect(users.authenticate(token, 'campaigns.send')).rejects.toMatchObject({ code: 'SESSION_EXPIRED', status: 401 });
  });

  it('revokes a session at logout', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const one = await users.login('mara', 'marketer passphrase 1');
    const two = await users.login('mara', 'marketer passphrase 1');
    await users.logout(one.token);
    await users.logout(one.token);
    await expect(users.sessions.resolve(one.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await users.sessions.resolve(two.token)).username).toBe('mara');
  });

  it('resets a forgotten password to a new one-time password, clearing a lockout and ending sessions', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    for (let i = 1; i <= 5; i++) await users.login('mara', `guess ${i}`).catch(() => undefined);
    const fresh = await users.resetPassword('mara', admin);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await users.login('mara', fresh)).session.mustChangePassword).toBe(true);
  });

  it('changes a role: the user is signed out everywhere, the change is audited, and the last admin stays an admin', async () => {
    await users.add({ username: 'root', role: 'admin', password: 'admin passphrase 12' }, admin);
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    const changed = await users.setRole('mara', 'clinician', admin);
    expect(changed.role).toBe('clinician');
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const again = await users.login('mara', 'marketer passphrase 1');
    expect(again.session.role).toBe('clinician');
    // The same role again is no change: the session lives and no second audit row is written.
    await users.setRole('mara', 'clinician', admin);
    expect((await users.sessions.resolve(again.token)).role).toBe('clinician');
    const rows: Array<[string | null | undefined, string]> = [];
    for await (const r of audit.search({ actionPrefix: 'user.set-role' })) rows.push([r.entity, r.actor]);
    expect(rows).toEqual([[`user/${changed.id}/role/clinician`, 'ada']]);
    await expect(users.setRole('root', 'marketer', admin)).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });
    await users.setRole('mara', 'admin', admin);
    expect((await users.setRole('root', 'marketer', admin)).role).toBe('marketer');
    await expect(users.setRole('nobody', 'marketer', admin)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('lets an admin set a password: weak ones refused, sessions end, the user must change it at the next sign-in', async () => {
    await users.add({ username: 'mara', role: 'marketer', password: 'marketer passphrase 1' }, admin);
    const { token } = await users.login('mara', 'marketer passphrase 1');
    await expect(users.setPassword('mara', 'short', admin)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await users.setPassword('mara', 'admin chose this one 7', admin);
    await expect(users.sessions.resolve(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(users.login('mara', 'marketer passphrase 1')).rejects.toMatchObject({ code: 'LOGIN_FAILED' });
    expect((await users.login('mara', 'admin chose this one 7')).session.mustChangePassword).toBe(true);
    const actions: string[] = [];
    for await (const r of audit.search({ actionPrefix: 'user.set-password' })) actions.push(r.actor);
    expect(actions).toEqual(['ada']);
  });
});
