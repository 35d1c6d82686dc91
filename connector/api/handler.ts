// What a route handler is: a function from the validated request and the caller's session to the response the contract names.
import type { ParsedRequestOf, ResponseOf, RouteName } from './contract.js';
import type { Session } from '../users/authorize.js';
import type { AuditEntry } from '../audit/audit-log.js';
import { fail } from '../errors.js';

export interface RequestContext {
  /** The live session; undefined only on public routes. */
  session: Session | undefined;
  /** The bearer token as sent (logout ends it); never logged. */
  token: string | undefined;
  /** The peer address (the login throttle keys on it). */
  ip: string;
  /** Sets a response header (Retry-After, Location). */
  header(name: string, value: string): void;
}

export type Handler<N extends RouteName> = (request: ParsedRequestOf<N>, context: RequestContext) => Promise<ResponseOf<N>>;

/** A capability's handlers, by route name; routes without one answer NOT_IMPLEMENTED. */
export type Handlers = { [N in RouteName]?: Handler<N> };

/** The session a protected handler runs under (the server has authenticated and authorized it already). */
export function sessionOf(context: RequestContext): Session {
  if (!context.session) throw new Error('handler of a protected route ran without a session');
  return context.session;
}

/** The audit actor of a session. */
export function actorOf(session: Session): { name: string; role: string } {
  return { name: session.username, role: session.role };
}

/** An audit row for an API action by the signed-in user. */
export function auditedBy(session: Session, entry: Omit<AuditEntry, 'actor' | 'role'>): AuditEntry {
  return { actor: session.username, role: session.role, ...entry };
}

/** A store row id from a path parameter: the tables use bigint ids, so anything else names nothing (404, not a SQL error). */
export function rowId(id: string, field: string): string {
  if (!/^[1-9][0-9]{0,17}$/.test(id)) throw fail('NOT_FOUND', `no such ${field === 'id' ? 'object' : field}`, { field });
  return id;
}
