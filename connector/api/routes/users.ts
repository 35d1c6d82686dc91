// User administration routes (admin): list, create with a chosen password, change a role, set a password, disable or enable.
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
      const actor = actorOf(session);
      let user = await app.users.byId(rowId(params.id, 'id'));
      if (!user) throw fail('NOT_FOUND', 'no such user', { field: 'id' });
      const self = user.id === session.userId;
      // Every check first, so that a refused field leaves the others unchanged too.
      if (self && body.role !== undefined && body.role !== user.role) throw fail('CONFLICT', 'you cannot change your own role: ask another admin', { field: 'role' });
      if (self && body.password !== undefined) throw fail('CONFLICT', 'change your own password with POST /session/password', { field: 'password' });
      if (self && body.disabled === true) throw fail('CONFLICT', 'you cannot disable your own account', { field: 'disabled' });
      // A role change and a new password each end the user's sessions (users.ts); both are audited.
      if (body.role !== undefined) user = await app.users.setRole(user.username, body.role, actor);
      if (body.password !== undefined) user = await app.users.setPassword(user.username, body.password, actor);
      if (body.disabled !== undefined && body.disabled !== (user.disabledAt !== null)) {
        user = body.disabled ? await app.users.disable(user.username, actor) : await app.users.enable(user.username, actor);
      }
      return apiUser(user);
    },
  };
}
