// Session routes: sign in (the users module counts failures and locks out), the current session, sign out, change password.
import type { App } from '../../app.js';
import { fail } from '../../errors.js';
import type { Session as UserSession } from '../../users/authorize.js';
import type { User as ApiUser } from '../contract.js';
import { sessionOf, type Handlers } from '../handler.js';
import type { User as StoredUser } from '../../users/users.js';

export function apiUser(u: StoredUser): ApiUser {
  return { id: u.id, username: u.username, role: u.role, disabled: u.disabledAt !== null, createdAt: u.createdAt.toISOString() };
}

export function sessionHandlers(app: App): Handlers {
  const idleTimeoutSeconds = app.config.sessionIdleMinutes * 60;
  const userOf = async (session: UserSession): Promise<ApiUser> => {
    const user = await app.users.byId(session.userId);
    if (!user) throw fail('UNAUTHENTICATED', 'the session is not valid: sign in again');
    return apiUser(user);
  };
  /** What sign-in and the current-session call both answer: who, until when, and whether a one-time password must be changed first. */
  const sessionInfo = async (session: UserSession) => ({
    user: await userOf(session),
    expiresAt: session.absoluteExpiresAt.toISOString(),
    idleTimeoutSeconds,
    passwordChangeRequired: session.mustChangePassword,
  });
  return {
    login: async ({ body }) => {
      try {
        const { token, session } = await app.users.login(body.username, body.password);
        return { token, ...(await sessionInfo(session)) };
      } catch (err) {
        // A malformed user name is a wrong user name: the answer must not tell which names can exist.
        if ((err as { code?: string }).code === 'BAD_REQUEST') throw fail('LOGIN_FAILED', 'wrong user name or password');
        throw err;
      }
    },
    currentSession: async (_request, context) => {
      return sessionInfo(sessionOf(context));
    },
    logout: async (_request, context) => {
      sessionOf(context);
      await app.users.logout(context.token!);
      return null;
    },
    changePassword: async ({ body }, context) => {
      await app.users.changePassword(sessionOf(context), body.currentPassword, body.newPassword);
      return null;
    },
  };
}
