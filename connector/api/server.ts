// The connector HTTP API (fastify): every route of the contract under /api/v1, validated and serialised by its zod schemas.
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import { z } from 'zod';
import type { App } from '../app.js';
import { fail, toOperationOutcome, type OutreachError } from '../errors.js';
import { authorize, type Session } from '../users/authorize.js';
import type { Operation } from '../users/permissions.js';
import { allows, apiPrefix, openApiDocument, routes, type RouteName, type RouteSpec } from './contract.js';
import { edgeError, validationError } from './error-outcome.js';
import type { Handler, Handlers, RequestContext } from './handler.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';
import { createApiMetrics, type ApiMetrics } from './metrics.js';
import { routeOperations } from './route-operations.js';
import { buildHandlers } from './routes/index.js';
import { publicRoutes } from './public-routes.js';
import { smartAppPlugin, type SmartAppOptions } from '../smart/smart-routes.js';

export interface ApiServerOptions {
  /** Largest request body in bytes (default 1 MiB); larger bodies get 413. */
  bodyLimit?: number;
  /** Per-address sign-in throttle (default 10 attempts a minute). */
  loginThrottle?: LoginThrottleOptions;
  /** PEM key and certificate: the server speaks HTTPS (and sends HSTS). */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** Handlers that replace or add to the built-in ones (a capability wired by its own module). */
  handlers?: Handlers;
  /** Process metrics (event loop, memory) in /metrics as well as the request histogram (default true). */
  defaultMetrics?: boolean;
  /** The escrow portal, unsubscribe and tracking routes outside /api/v1 (default true). */
  publicPages?: boolean;
  /** Options of the SMART approval app (connector/smart): page assets, extra CAs for the EHRs. */
  smart?: Omit<SmartAppOptions, 'app'>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    routeName?: RouteName | 'openapi' | 'jwks' | 'portal' | 'unsubscribe' | 'tracking';
  }
}

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';

const securityHeaders: Record<string, string> = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/** `Authorization: Bearer <token>`; anything else is no token. */
function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer[ ]+([A-Za-z0-9._~+/=-]{1,512})$/i.exec(header) : null;
  return m?.[1];
}

function sameOrigin(origin: string, request: FastifyRequest): boolean {
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
}

/** Deepest nesting of arrays and objects, measured without recursion (a hostile body must not exhaust the stack). */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(node as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** No contract schema nests deeper than this (a segment definition at its depth limit is about 20). */
const maxBodyDepth = 64;

function parsePart(part: 'params' | 'query' | 'body', schema: z.ZodType | undefined, value: unknown): unknown {
  if (part === 'body' && nestingDepth(value, maxBodyDepth) > maxBodyDepth) {
    throw fail('BAD_REQUEST', `body: nested deeper than ${maxBodyDepth} levels`, { field: 'body' });
  }
  if (!schema) {
    if (!isEmpty(value)) {
      const key = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value)[0] : undefined;
      const field = key && /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(key) ? key : part;
      throw fail('BAD_REQUEST', `${field}: this operation takes no ${part === 'body' ? 'body' : `${part} fields`}`, { field });
    }
    return undefined;
  }
  // Query and path objects come from fastify without a prototype; zod wants a plain object.
  const input = value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value } : value;
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw validationError(part, parsed.error);
  return parsed.data;
}

function sendError(reply: FastifyReply, error: OutreachError): FastifyReply {
  const retry = error.details.retryAfterSeconds;
  if (typeof retry === 'number') reply.header('retry-after', String(retry));
  if (error.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(error.status).type('application/fhir+json; charset=utf-8').send(JSON.stringify(toOperationOutcome(error)));
}

/**
 * Builds the API server for `app` (not listening yet: call `listen`). Every route of the contract's table is
 * registered from the table: session and role checks, zod validation of params, query and body, the handler, and
 * the response checked against the contract before it leaves.
 */
export async function createApiServer(app: App, options: ApiServerOptions = {}): Promise<FastifyInstance> {
  const log = app.log.child({ component: 'api' });
  const metrics: ApiMetrics = createApiMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const throttle = new LoginThrottle(options.loginThrottle);
  const built = buildHandlers(app, { metrics, version: packageVersion });
  const handlers: Handlers = { ...built.handlers, ...options.handlers };
  const allowedOrigins = new Set(app.config.extensionOrigins);
  // The portal and unsubscribe pages post their forms to themselves, from the public URL.
  const publicOrigin = app.config.publicUrl ? new URL(app.config.publicUrl).origin : undefined;

  const server = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...(options.https ? { https: { key: options.https.key, cert: options.https.cert, minVersion: 'TLSv1.2' as const } } : {}),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    requestTimeout: 30_000,
    routerOptions: { maxParamLength: 200 },
  }) as unknown as FastifyInstance;
  // Only JSON bodies: a text/plain or form body is refused with 415 before any handler runs.
  server.removeContentTypeParser('text/plain');

  server.addHook('onRequest', async (request, reply) => {
    for (const [name, value] of Object.entries(securityHeaders)) reply.header(name, value);
    if (options.https) reply.header('strict-transport-security', 'max-age=31536000');
    // A browser page on another origin gets nothing, not even a side effect: refuse before any route runs.
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin) && origin !== publicOrigin && !sameOrigin(origin, request)) {
      throw fail('FORBIDDEN', 'this origin may not call the connector');
    }
  });
  await server.register(cors, {
    origin: [...allowedOrigins],
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'accept'],
    exposedHeaders: ['retry-after'],
    credentials: false,
    maxAge: 600,
    strictPreflight: true,
  });

  server.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.config.routeName ?? 'unmatched';
    metrics.observe(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) log.warn({ route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request failed');
    else log.debug({ route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request');
  });

  server.setErrorHandler((err, request, reply) => {
    const error = edgeError(err);
    if (error.code === 'INTERNAL') {
      // The error's own message may quote input: only its kind and code reach the log, never the client.
      log.error({ route: request.routeOptions.config.routeName ?? 'unmatched', err }, 'api handler error');
    }
    return sendError(reply, error);
  });
  server.setNotFoundHandler((_request, reply) => sendError(reply, fail('NOT_FOUND', 'no such API route')));
  await server.register(smartAppPlugin, { app, ...options.smart });

  // Syncs started by requests finish (and record their outcome) before the server is gone.
  server.addHook('onClose', async () => built.idle());
  server.get('/.well-known/jwks.json', { config: { routeName: 'jwks' } }, async (_request, reply) =>
    reply.type('application/jwk-set+json').send(JSON.stringify(await built.jwks())),
  );

  if (options.publicPages ?? true) await publicRoutes(app).register(server);

  let openApi: string | undefined;
  server.get(`${apiPrefix}/openapi.json`, { config: { routeName: 'openapi' } }, async (_request, reply) => {
    openApi ??= JSON.stringify(openApiDocument(packageVersion));
    return reply.type('application/json; charset=utf-8').send(openApi);
  });

  for (const [name, spec] of Object.entries(routes) as [RouteName, RouteSpec][]) {
    const operation = routeOperations[name];
    const handler = handlers[name] as Handler<RouteName> | undefined;
    const status = spec.status ?? (spec.response instanceof z.ZodNull ? 204 : 200);
    server.route({
      method: spec.method,
      url: `${apiPrefix}${spec.path}`,
      config: { routeName: name },
      handler: async (request, reply) => {
        let session: Session | undefined;
        const token = bearerToken(request.headers.authorization);
        if (operation !== 'public') {
          // Who first, then whether the role may, then the input: an anonymous caller learns nothing about validation.
          session = authorize(await app.users.sessions.resolve(token), operation as Operation);
          if (!allows(name, session.role)) throw fail('FORBIDDEN', `the ${session.role} role may not call ${name}`);
        }
        if (name === 'login') throttle.take(request.ip);
        const parsed = {
          params: parsePart('params', spec.params, request.params),
          query: parsePart('query', spec.query, request.query),
          body: parsePart('body', spec.body, request.body),
        };
        if (!handler) throw fail('NOT_IMPLEMENTED', `${name} is not available: its service is not installed in this connector`);
        const context: RequestContext = {
          session,
          token,
          ip: request.ip,
          header: (header, value) => void reply.header(header, value),
        };
        const result = await handler(parsed as never, context);
        if (status === 204) return reply.code(204).send();
        if (spec.text) return reply.code(status).type(metrics.registry.contentType).send(String(result));
        const out = spec.response.safeParse(result);
        if (!out.success) {
          log.error({ route: name, path: out.error.issues[0]?.path.join('.') ?? '' }, 'api response does not match the contract');
          throw fail('INTERNAL', 'the response did not match the API contract');
        }
        return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(out.data));
      },
    });
  }
  return server;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/**
 * Creates and starts the server. Plain HTTP is refused on any address but loopback: PHI and bearer tokens travel
 * only over TLS once they leave the machine.
 */
export async function startApiServer(app: App, listen: ListenOptions, options: Omit<ApiServerOptions, 'https'> = {}): Promise<{ server: FastifyInstance; url: string }> {
  if (!listen.tls && !isLoopback(listen.host)) {
    throw fail('INVALID_CONFIG', `plain HTTP is served only on loopback; set OUTREACH_TLS_CERT and OUTREACH_TLS_KEY to listen on ${listen.host}`);
  }
  const server = await createApiServer(app, { ...options, ...(listen.tls ? { https: listen.tls } : {}) });
  await server.listen({ host: listen.host, port: listen.port });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const host = listen.host.includes(':') && !listen.host.startsWith('[') ? `[${listen.host}]` : listen.host;
  return { server, url: `${listen.tls ? 'https' : 'http'}://${host}:${port}` };
}
