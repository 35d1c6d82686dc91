// Who the audit log names for a command run on the server: the local operator, with the admin role the key file gives them.
import { userInfo } from 'node:os';

export function cliActor(): { name: string; role: 'admin' } {
  let user = 'operator';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): keep the generic name.
  }
  return { name: `cli:${user.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 60) || 'operator'}`, role: 'admin' };
}
