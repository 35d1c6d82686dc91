// The `--user` sign-in CLI commands share: the password read from stdin, an audited login, and a logout whatever happens.
import { createInterface } from 'node:readline';
import type { App } from './app.js';
import type { CliContext } from './cli-context.js';
import { fail } from './errors.js';
import type { Session } from './users/authorize.js';

/** What a signed-in command reads from the operator; tests pass their own. */
export interface CliUserIo {
  /** The password of `--user`: one line from stdin (pipe it, or type it at the prompt). */
  readPassword(username: string): Promise<string>;
  /** Resolves when the operator asks to stop (Ctrl-C). */
  interrupted(): Promise<void>;
}

export const stdinUserIo: CliUserIo = {
  readPassword: (username) =>
    new Promise((resolve, reject) => {
      if (process.stdin.isTTY) process.stderr.write(`password for ${username}: `);
      const rl = createInterface({ input: process.stdin, terminal: false });
      rl.once('line', (line) => (rl.close(), resolve(line)));
      rl.once('close', () => reject(fail('LOGIN_FAILED', 'no password on stdin')));
    }),
  interrupted: () => new Promise((resolve) => process.once('SIGINT', () => resolve())),
};

/** Signs in as `user` (audited like any sign-in), runs `fn` with the session, signs out even when `fn` throws. */
export async function asCliUser<T>(
  ctx: CliContext,
  io: Pick<CliUserIo, 'readPassword'>,
  user: string,
  fn: (session: Session, app: App) => Promise<T>,
): Promise<T> {
  const app = await ctx.app();
  const { token, session } = await app.users.login(user, await io.readPassword(user));
  try {
    return await fn(session, app);
  } finally {
    await app.users.logout(token);
  }
}
