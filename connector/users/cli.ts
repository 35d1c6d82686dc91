// `outreach user init|add|list|disable|enable|reset-password`: accounts for the API and the extension (admin).
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from './cli-actor.js';
import { isRole, roleList } from './permissions.js';
import type { User } from './users.js';

const userLine = (u: User) =>
  `${u.username.padEnd(24)} ${u.role.padEnd(10)} ${u.disabledAt ? 'disabled' : u.lockedUntil && u.lockedUntil > new Date() ? 'locked' : 'active'}${u.mustChangePassword ? ' (one-time password)' : ''} last sign-in ${u.lastLoginAt?.toISOString() ?? 'never'}`;

export function registerUserCommands(program: Command, ctx: CliContext): void {
  const user = program.command('user').description('users and roles (admin)');

  user
    .command('init')
    .description('on a new store, create the admin user and print its one-time password (shown once, never stored)')
    .action(
      action(ctx, async () => {
        const app = await ctx.app();
        const created = await app.users.ensureFirstAdmin();
        ctx.out(created ?? { created: false }, (r: { username?: string; password?: string }) =>
          r.password
            ? `created user ${r.username} (admin). One-time password, shown only now:\n  ${r.password}\nChange it at first sign-in.`
            : 'users exist already: no admin created',
        );
      }),
    );

  user
    .command('add')
    .description('add a user; prints a one-time password they change at first sign-in')
    .requiredOption('--username <name>', 'user name (a-z 0-9 . _ @ -)')
    .requiredOption('--role <role>', roleList.join(' | '))
    .action(
      action(ctx, async (opts: { username: string; role: string }) => {
        if (!isRole(opts.role)) throw fail('BAD_REQUEST', `role must be one of ${roleList.join(', ')}`, { field: 'role' });
        const app = await ctx.app();
        const { user: added, oneTimePassword } = await app.users.add({ username: opts.username, role: opts.role }, cliActor());
        ctx.out({ user: added, oneTimePassword }, (r: { user: User; oneTimePassword: string }) =>
          `added ${r.user.username} (${r.user.role}). One-time password, shown only now:\n  ${r.oneTimePassword}`,
        );
      }),
    );

  user
    .command('list')
    .description('every user with role and state')
    .action(
      action(ctx, async () => {
        const app = await ctx.app();
        const users = await app.users.list();
        ctx.out(users, (list: User[]) => (list.length ? list.map(userLine).join('\n') : '(no users: run `outreach user init`)'));
      }),
    );

  user
    .command('disable')
    .description('disable a user and end their sessions')
    .requiredOption('--username <name>', 'user name')
    .action(
      action(ctx, async (opts: { username: string }) => {
        const app = await ctx.app();
        ctx.out(await app.users.disable(opts.username, cliActor()), userLine);
      }),
    );

  user
    .command('enable')
    .description('enable a disabled user')
    .requiredOption('--username <name>', 'user name')
    .action(
      action(ctx, async (opts: { username: string }) => {
        const app = await ctx.app();
        ctx.out(await app.users.enable(opts.username, cliActor()), userLine);
      }),
    );

  user
    .command('reset-password')
    .description('give a user a new one-time password, clear a lockout and end their sessions')
    .requiredOption('--username <name>', 'user name')
    .action(
      action(ctx, async (opts: { username: string }) => {
        const app = await ctx.app();
        const password = await app.users.resetPassword(opts.username, cliActor());
        ctx.out({ username: opts.username, oneTimePassword: password }, (r: { username: string; oneTimePassword: string }) =>
          `new one-time password for ${r.username}, shown only now:\n  ${r.oneTimePassword}`,
        );
      }),
    );
}
