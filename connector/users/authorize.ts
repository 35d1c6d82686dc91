// The access check every API route and command makes: a live session whose role the permission matrix allows.
import { fail } from '../errors.js';
import { can, type Operation, type Role } from './permissions.js';

/** A resolved session: who is signed in and until when. Holds no token. */
export interface Session {
  id: string;
  userId: string;
  username: string;
  role: Role;
  createdAt: Date;
  lastSeenAt: Date;
  /** The session ends here unless it is used again before. */
  idleExpiresAt: Date;
  /** The session ends here whatever happens. */
  absoluteExpiresAt: Date;
  /** Signed in with a one-time password: only the account operations are open until it is changed. */
  mustChangePassword: boolean;
  /** Set when the EHR authenticated the user (a SMART launch): decisions record this Practitioner and the launch's `iss`. */
  ehrIdentity?: { practitioner: string; iss: string };
}

const accountOperations: ReadonlySet<Operation> = new Set(['account.read', 'account.change-password', 'account.logout']);

/**
 * Throws UNAUTHENTICATED without a session, SESSION_EXPIRED past its idle or absolute end, FORBIDDEN when the role
 * may not perform `operation` (or a one-time password has not been changed yet). Returns the session otherwise.
 */
export function authorize(session: Session | null | undefined, operation: Operation, now: Date = new Date()): Session {
  if (!session) throw fail('UNAUTHENTICATED', 'sign in first');
  if (now.getTime() >= session.absoluteExpiresAt.getTime() || now.getTime() >= session.idleExpiresAt.getTime()) {
    throw fail('SESSION_EXPIRED', 'the session timed out: sign in again');
  }
  if (!can(session.role, operation)) throw fail('FORBIDDEN', `the ${session.role} role may not perform ${operation}`, { operation });
  if (session.mustChangePassword && !accountOperations.has(operation)) {
    throw fail('FORBIDDEN', 'change the one-time password before anything else', { operation });
  }
  return session;
}
