// `outreach user init|add|list|disable|reset-password`: one-time passwords printed once, states listed, sign-in follows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { registerUserCommands } from '../../../connector/users/cli.js';
import { UserDirectory } from '../../../connector/users/users.js';
import { cliRunner } from '../../support/cli-runner.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';

describe('user commands', () => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let run: ReturnType<typeof cliRunner>;
  let users: UserDirectory;
  beforeAll(async () => {
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    const audit = createAuditLog({ db: store.db, cipher: createTestCipher() });
    users = new UserDirectory({ db: store.db, audit, sessions: { idleMinutes: 15, absoluteHours: 12 }, passwordCost: { N: 1024, r: 8, p: 1 } });
    run = cliRunner([registerUserCommands], () => ({ db: store.db, audit, users }));
  });
  afterAll(async () => store.close());

  it('creates the first admin once and prints its one-time password', async () => {
    const first = await run(['user', 'init'], false);
    const password = /^\s+(\S{24})$/m.exec(first.text)?.[1];
    expect(password).toBeDefined();
    expect((await users.login('admin', password!)).session.role).toBe('admin');
    expect((await run(['user', 'init'], false)).text).toBe('users exist already: no admin created');
  });

  it('adds users with a role, lists them, disables one', async () => {
    const added = await run(['user', 'add', '--username', 'mara', '--role', 'marketer']);
    expect(added.out).toMatchObject({ user: { username: 'mara', role: 'marketer', mustChangePassword: true } });
    expect((await users.login('mara', added.out.oneTimePassword)).session.role).toBe('marketer');
    expect((await run(['user', 'add', '--username', 'x', '--role', 'superuser'])).out).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect((await run(['user', 'add', '--username', 'mara', '--role', 'clinician'])).out).toMatchObject({ error: { code: 'CONFLICT' } });
    await run(['user', 'disable', '--username', 'mara']);
    const list = await run(['user', 'list'], false);
    expect(list.text).toMatch(/^admin\s+admin\s+active \(one-time password\)/m);
    expect(list.text).toMatch(/^mara\s+marketer\s+disabled/m);
    expect((await run(['user', 'disable', '--username', 'ghost'])).out).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('resets a password to a new one-time password', async () => {
    await run(['user', 'enable', '--username', 'mara']);
    const reset = await run(['user', 'reset-password', '--username', 'mara']);
    expect((await users.login('mara', reset.out.oneTimePassword)).session.mustChangePassword).toBe(true);
  });
});
