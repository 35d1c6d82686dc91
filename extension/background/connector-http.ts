// A fetch-based connector client: validates each call against the contract before sending and each answer after; used by the background worker and reusable by a SMART app page.
import { z } from 'zod';
import { errorCodeSystem, ErrorOutcome, routes, routeUrl, type CallInput, type ResponseOf, type RouteName, type RouteSpec } from '../../connector/api/contract.js';
import type { Failure } from '../messages.js';
import { ConnectorCallError } from '../connector-error.js';
import type { ConnectorClient } from '../connector-client.js';

export interface HttpClientOptions {
  /** The connector's base URL (https, or http on loopback). */
  baseUrl: string;
  /** The bearer token, or null when signed out. */
  token: () => Promise<string | null> | string | null;
  fetch?: typeof fetch;
  /** Called on 401 so the caller can drop its session. */
  onUnauthenticated?: () => void | Promise<void>;
  timeoutMs?: number;
}

/** Loopback may speak plain HTTP (the demo); anything else must be HTTPS. */
export function checkConnectorUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConnectorCallError({ code: 'BAD_REQUEST', message: 'The connector URL is not a URL.', field: 'url' });
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConnectorCallError({ code: 'BAD_REQUEST', message: 'The connector URL must use https (plain http only on loopback).', field: 'url' });
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ConnectorCallError({ code: 'BAD_REQUEST', message: 'The connector URL must not carry credentials, a query or a fragment.', field: 'url' });
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function fieldOf(error: z.ZodError, part: string): Failure {
  const issue = error.issues[0]!;
  const field = [part, ...issue.path.map(String)].join('.');
  return { code: 'BAD_REQUEST', message: `${field}: ${issue.message}`, field };
}

/** Validates the parts of a call against the route's schemas; returns them parsed. */
export function validateCall(name: RouteName, input: { params?: unknown; query?: unknown; body?: unknown }):
  | { ok: true; params: Record<string, string>; query: Record<string, unknown> | undefined; body: unknown }
  | { ok: false; error: Failure } {
  const spec: RouteSpec = routes[name];
  const out: { params: Record<string, string>; query: Record<string, unknown> | undefined; body: unknown } = { params: {}, query: undefined, body: undefined };
  for (const part of ['params', 'query', 'body'] as const) {
    const schema = spec[part];
    const value = input[part];
    if (!schema) {
      if (value !== undefined && !(part !== 'body' && value && Object.keys(value).length === 0)) {
        return { ok: false, error: { code: 'BAD_REQUEST', message: `${name} takes no ${part}`, field: part } };
      }
      continue;
    }
    const parsed = schema.safeParse(value ?? (part === 'body' ? {} : {}));
    if (!parsed.success) return { ok: false, error: fieldOf(parsed.error, part) };
    (out as Record<string, unknown>)[part] = parsed.data;
  }
  return { ok: true, ...out };
}

/** The Failure a connector error answer carries (its OperationOutcome code and text), or a generic one. */
export async function failureFrom(response: Response): Promise<Failure> {
  try {
    const body = ErrorOutcome.safeParse(await response.json());
    if (body.success) {
      const issue = body.data.issue[0]!;
      const coding = issue.details.coding.find((c) => c.system === errorCodeSystem) ?? issue.details.coding[0]!;
      return { code: coding.code, message: issue.details.text, ...(issue.expression?.[0] ? { field: issue.expression[0] } : {}) };
    }
  } catch {
    /* not JSON: fall through */
  }
  return { code: response.status === 401 ? 'UNAUTHENTICATED' : 'CONNECTOR_ERROR', message: `The connector answered ${response.status}.` };
}

/** The session token for a signed-in call; UNAUTHENTICATED when there is none. */
export async function bearerToken(options: HttpClientOptions): Promise<string> {
  const token = await options.token();
  if (!token) throw new ConnectorCallError({ code: 'UNAUTHENTICATED', message: 'Sign in to the connector first.' });
  return token;
}

/**
 * Sends one request to the connector as every extension call does (no cookies, no cache, no referrer, a timeout) and
 * returns a successful response. Throws ConnectorCallError: CONNECTOR_UNREACHABLE when it cannot be reached, else the
 * Failure of an error answer (after `onUnauthenticated` on a 401).
 */
export async function sendToConnector(
  options: HttpClientOptions,
  path: string,
  request: { method: string; headers: Record<string, string>; body?: string | undefined },
): Promise<Response> {
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(options.baseUrl + path, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch {
    throw new ConnectorCallError({ code: 'CONNECTOR_UNREACHABLE', message: 'The connector cannot be reached.' });
  }
  if (!response.ok) {
    const failure = await failureFrom(response);
    if (response.status === 401) await options.onUnauthenticated?.();
    throw new ConnectorCallError(failure);
  }
  return response;
}

/** One validated call. Throws ConnectorCallError with a stable code. */
export async function callConnector<N extends RouteName>(options: HttpClientOptions, name: N, input: CallInput<N>): Promise<ResponseOf<N>> {
  const spec: RouteSpec = routes[name];
  const checked = validateCall(name, input as { params?: unknown; query?: unknown; body?: unknown });
  if (!checked.ok) throw new ConnectorCallError(checked.error);
  const headers: Record<string, string> = { accept: spec.text ? 'text/plain' : 'application/json' };
  if (spec.access !== 'public') headers.authorization = `Bearer ${await bearerToken(options)}`;
  let body: string | undefined;
  if (spec.body) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(checked.body);
  }
  const response = await sendToConnector(options, routeUrl(name, checked.params, checked.query), { method: spec.method, headers, body });
  if (response.status === 204) return null as ResponseOf<N>;
  const raw = spec.text ? await response.text() : await response.json().catch(() => undefined);
  const parsed = spec.response.safeParse(raw);
  if (!parsed.success) throw new ConnectorCallError({ code: 'CONNECTOR_CONTRACT', message: `The connector's answer to ${name} does not match the contract.` });
  return parsed.data as ResponseOf<N>;
}

/** A ConnectorClient over HTTP. */
export function httpClient(options: HttpClientOptions): ConnectorClient {
  return { call: (name, input) => callConnector(options, name, input) };
}
