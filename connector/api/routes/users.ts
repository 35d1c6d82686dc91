// User administration routes (admin): list, create with a chosen password, disable or enable.
import type { App } from '../../app.js';
import { fail } from '../../errors.js';
import { actorOf, rowId, sessionOf, type Handlers } from '../handler.js';
import { apiUser } from './session.js';

export function userHandlers(app: App): Handlers {
  return {
    listUsers: async () => ({ users: (await app.users.list()).map(apiUser) }),
    createUser: async ({ body }, context) => {
      const { user } = await app.users.add({ username: body.username, role: body.role, password: body.password }, actorOf(sessionOf(context)));
      return apiUser(user);
    },
    updateUser: async ({ params, body }, context) => {
      const session = sessionOf(context);
      const user = await app.users.byId(rowId(params.id, 'id'));
      if (!user) throw fail('NOT_FOUND', 'no such user', { field: 'id' });
      if (body.role !== undefined && body.role !== user.role) {
        throw fail('NOT_IMPLEMENTED', 'changing a role is not supported by the user directory yet: disable the user and create a new one', { field: 'role' });
      }
      if (body.password !== undefined) {
        throw fail('NOT_IMPLEMENTED', 'an admin sets no password: run `outreach user reset-password` for a one-time password', { field: 'password' });
      }
      if (body.disabled !== undefined && body.disabled !== (user.disabledAt !== null)) {
        if (body.disabled && user.id === session.userId) throw fail('CONFLICT', 'you cannot disable your own account', { field: 'disabled' });
        return apiUser(body.disabled ? await app.users.disable(user.username, actorOf(session)) : await app.users.enable(user.username, actorOf(session)));
      }
      return apiUser(user);
    },
  };
}
