// Answers every message the background receives: validates it, checks who sent it, and runs it against the connector and the session store.
import { allows, routes, type RouteName } from '../../connector/api/contract.js';
import { ConnectorCallError } from '../connector-error.js';
import { contentScriptRoutes, Message, type Failure, type Reply, type SessionState } from '../messages.js';
import { callConnector, checkConnectorUrl, validateCall } from './connector-http.js';
import { originPattern } from './ehr-scripts.js';
import { callSmartAdmin, smartAdminAllowed } from './smart-admin.js';
import type { SessionStore } from './session-store.js';

export interface Sender {
  id?: string;
  url?: string;
}

export interface RouterDeps {
  store: SessionStore;
  extensionId: string;
  /** The extension's own base URL (chrome-extension://<id>/). */
  extensionUrl: string;
  fetch: typeof fetch;
  /** Re-registers the EHR content script on the granted origins. */
  syncEhrOrigins(origins: string[]): Promise<string[]>;
  /** Tells open Salesforce and EHR tabs that the user signed in or out, so their UI reloads its data. */
  notifySessionChanged?(): Promise<void>;
}

type Caller = 'extension-page' | 'content-script';
function callerOf(sender: Sender, deps: RouterDeps): Caller | null {
  if (sender.id !== deps.extensionId) return null;
  if (sender.url?.startsWith(deps.extensionUrl)) return 'extension-page';
  return 'content-script';
}

const failure = (code: string, message: string, field?: string): Reply<never> => ({ ok: false, error: { code, message, ...(field ? { field } : {}) } });

function asFailure(err: unknown): Reply<never> {
  if (err instanceof ConnectorCallError) return failure(err.code, err.message, err.field);
  // Never echo an unknown error's message: it could hold page content.
  return failure('EXTENSION_ERROR', 'The extension hit an unexpected error.');
}

export function messageRouter(deps: RouterDeps) {
  const { store } = deps;

  async function state(): Promise<SessionState> {
    const [settings, session] = await Promise.all([store.settings(), store.session()]);
    return {
      connectorUrl: settings.connectorUrl,
      signedIn: session !== null,
      user: session ? { username: session.username, role: session.role } : null,
      expiresAt: session?.expiresAt ?? null,
      ehrOrigins: settings.ehrOrigins,
      passwordChangeRequired: session?.passwordChangeRequired === true,
    };
  }

  /**
   * Signs in and keeps the session. The connector's answer says whether the password was a one-time one that must be
   * changed first (until then it refuses every call but the account ones); the password itself is never stored.
   */
  async function signIn(username: string, password: string): Promise<void> {
    const session = await callConnector(await connectorOptions(), 'login', { body: { username, password } });
    await store.saveSession({
      token: session.token,
      username: session.user.username,
      role: session.user.role,
      expiresAt: session.expiresAt,
      passwordChangeRequired: session.passwordChangeRequired,
    });
  }

  async function connectorOptions() {
    const { connectorUrl } = await store.settings();
    if (!connectorUrl) throw new ConnectorCallError({ code: 'CONNECTOR_NOT_CONFIGURED', message: 'An admin must set the connector URL in the options page.' });
    return {
      baseUrl: connectorUrl,
      fetch: deps.fetch,
      token: async () => (await store.session())?.token ?? null,
      onUnauthenticated: async () => {
        await store.clearSession();
        await deps.notifySessionChanged?.();
      },
    };
  }

  async function signOut(): Promise<void> {
    const session = await store.session();
    if (session) {
      try {
        await callConnector(await connectorOptions(), 'logout', {});
      } catch {
        /* the local session ends whatever the connector says */
      }
    }
    await store.clearSession();
    if (session) await deps.notifySessionChanged?.();
  }

  async function handle(message: Message, caller: Caller): Promise<Reply<unknown>> {
    if (caller === 'content-script' && message.type !== 'session/get' && message.type !== 'api') {
      return failure('FORBIDDEN', 'Only extension pages may do this.');
    }
    switch (message.type) {
      case 'session/get':
        return { ok: true, data: await state() };
      case 'session/sign-in': {
        await signIn(message.username, message.password);
        await deps.notifySessionChanged?.();
        return { ok: true, data: await state() };
      }
      case 'session/change-password': {
        const session = await store.session();
        if (!session) return failure('UNAUTHENTICATED', 'Sign in to the connector first.');
        const options = await connectorOptions();
        try {
          // A wrong current password answers 401 LOGIN_FAILED while the session lives on: only a lost session ends it here.
          await callConnector({ ...options, onUnauthenticated: undefined }, 'changePassword', { body: { currentPassword: message.currentPassword, newPassword: message.newPassword } });
        } catch (err) {
          if (err instanceof ConnectorCallError && (err.code === 'UNAUTHENTICATED' || err.code === 'SESSION_EXPIRED')) await options.onUnauthenticated();
          throw err;
        }
        // The connector ends the user's sessions on a change; end this one too in case it lives on, then sign in again with the new password.
        try {
          await callConnector(options, 'logout', {});
        } catch {
          /* already ended */
        }
        await store.clearSession();
        try {
          await signIn(session.username, message.newPassword);
        } finally {
          await deps.notifySessionChanged?.();
        }
        return { ok: true, data: await state() };
      }
      case 'session/sign-out':
        await signOut();
        return { ok: true, data: await state() };
      case 'settings/set-connector': {
        const url = checkConnectorUrl(message.url);
        const before = await store.settings();
        if (before.connectorUrl !== url) await signOut();
        await store.updateSettings({ connectorUrl: url });
        return { ok: true, data: await state() };
      }
      case 'ehr/origins-changed': {
        const registered = await deps.syncEhrOrigins(message.origins);
        await store.updateSettings({ ehrOrigins: message.origins.filter((o) => registered.includes(originPattern(o) ?? '')) });
        return { ok: true, data: { registered } };
      }
      case 'smart-admin': {
        const session = await store.session();
        if (!smartAdminAllowed(message.request.op, session?.role)) {
          return failure(session ? 'FORBIDDEN' : 'UNAUTHENTICATED', session ? 'Registering EHRs for app launch needs the admin role.' : 'Sign in to the connector first.');
        }
        return { ok: true, data: await callSmartAdmin(await connectorOptions(), message.request) };
      }
      case 'api': {
        const route: RouteName = message.route;
        if (caller === 'content-script' && !(contentScriptRoutes as readonly string[]).includes(route)) {
          return failure('FORBIDDEN', `A page script may not call ${route}.`);
        }
        if (route === 'login' || route === 'logout' || route === 'changePassword') return failure('FORBIDDEN', 'Use the session messages to sign in, sign out or change the password.');
        const session = await store.session();
        if (routes[route].access !== 'public' && !allows(route, session?.role)) {
          return failure(session ? 'FORBIDDEN' : 'UNAUTHENTICATED', session ? 'Your role does not allow this operation.' : 'Sign in to the connector first.');
        }
        const checked = validateCall(route, message);
        if (!checked.ok) return { ok: false, error: checked.error };
        const data = await callConnector(await connectorOptions(), route, { params: message.params, query: message.query, body: message.body } as never);
        return { ok: true, data };
      }
    }
  }

  return {
    signOut,
    state,
    /** Entry point for runtime.onMessage: never throws, always answers with a Reply. */
    async receive(raw: unknown, sender: Sender): Promise<Reply<unknown>> {
      const caller = callerOf(sender, deps);
      if (!caller) return failure('FORBIDDEN', 'Messages are accepted only from this extension.');
      const parsed = Message.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return failure('BAD_MESSAGE', `Malformed message at ${issue.path.join('.') || 'root'}.`, issue.path.join('.'));
      }
      try {
        return await handle(parsed.data, caller);
      } catch (err) {
        return asFailure(err);
      }
    },
  };
}

export type { Failure };
