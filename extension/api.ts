// The connector client the UI uses: a typed call per contract route, carried by runtime messages to the background worker.
import browser from 'webextension-polyfill';
import type { ConnectorClient } from './connector-client.js';
import { ConnectorCallError } from './connector-error.js';
import type { Message, Reply, ReplyOf, SessionState } from './messages.js';

export { ConnectorCallError };
export type { ConnectorClient };

/** Sends one typed message to the background worker and unwraps its reply. */
export async function send<M extends Message>(message: M): Promise<ReplyOf<M> extends Reply<infer T> ? T : never> {
  const reply = (await browser.runtime.sendMessage(message)) as Reply<unknown> | undefined;
  if (!reply) throw new ConnectorCallError({ code: 'EXTENSION_UNAVAILABLE', message: 'The extension background did not answer; reload the page.' });
  if (!reply.ok) throw new ConnectorCallError(reply.error);
  return reply.data as ReplyOf<M> extends Reply<infer T> ? T : never;
}

/** The client every extension UI uses. */
export function messagingClient(): ConnectorClient {
  return {
    call(route, input) {
      const parts = input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
      return send({ type: 'api', route, params: parts.params, query: parts.query, body: parts.body }) as never;
    },
  };
}

export const sessionState = (): Promise<SessionState> => send({ type: 'session/get' });
