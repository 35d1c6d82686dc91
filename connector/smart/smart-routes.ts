// The SMART app as a fastify plugin: /smart/launch and /smart/callback (the launch), /smart/app (the page), the page's cookie-authenticated API, and /smart/admin (EHR registration: add, edit, disable).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { App } from '../app.js';
import { apiPrefix, routes, type RouteName, type RouteSpec } from '../api/contract.js';
import { validationError } from '../api/error-outcome.js';
import type { Handler, RequestContext } from '../api/handler.js';
import { campaignHandlers } from '../api/routes/campaigns.js';
import { asOutreachError, fail, type OutreachError } from '../errors.js';
import { loadExtraCa } from '../delivery/trust.js';
import type { Operation } from '../users/permissions.js';
import { SmartSessions, type SmartSession } from './app-sessions.js';
import { reviewCampaign } from './campaign-review.js';
import { createEhrFetch, EhrDiscovery, type EhrFetch } from './ehr-discovery.js';
import { SmartEhrRegistry, type PractitionerLink, type SmartEhr } from './ehr-registry.js';
import { SmartLaunchFlow } from './launch-flow.js';
import { csrfHeader, PractitionerLinkInput, smartPaths, SmartEhrInput, SmartEhrUpdate } from './smart-contract.js';

export interface SmartAppOptions {
  app: App;
  /** The built app page (index.html and assets/); default dist/smart-app of the repository. */
  assetsDir?: string;
  /** Extra CAs trusted for the EHR's endpoints, added to config.extraCaFile and Node's roots. */
  ca?: readonly string[];
  /** Replaces the EHR fetch (tests); default: verified TLS with the extra CAs. */
  fetchEhr?: EhrFetch;
}

export const defaultAssetsDir = resolve(fileURLToPath(new URL('../../dist/smart-app', import.meta.url)));

/** The campaign routes of the /api/v1 contract the page calls (with its cookie) under /smart. */
const pageRoutes = ['listCampaigns', 'getCampaign', 'approveCampaign', 'rejectCampaign'] as const satisfies readonly RouteName[];

const cookieNames = (secure: boolean) =>
  secure ? { session: '__Host-outreach-smart', launch: '__Host-outreach-smart-launch' } : { session: 'outreach-smart', launch: 'outreach-smart-launch' };

function readCookie(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * HttpOnly always. Over HTTPS: Secure, and SameSite=None with Partitioned (CHIPS), because the EHR frames the app from
 * another site and a Lax cookie would not reach it there; forgery is stopped by the anti-forgery header instead.
 * Over plain HTTP (loopback only): SameSite=Lax.
 */
function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  const attrs = [`${name}=${value}`, 'Path=/', 'HttpOnly', `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`];
  attrs.push(...(secure ? ['Secure', 'SameSite=None', 'Partitioned'] : ['SameSite=Lax']));
  return attrs.join('; ');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plain HTML page for a refused launch: the error code and the PHI-free message, nothing else. */
function errorPage(error: OutreachError): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Secure Outreach · launch refused</title>
<style>body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#181818}
.error{border:1px solid #e37b7b;background:#fde8e8;color:#7a1010;padding:12px 16px;border-radius:6px;max-width:640px}
code{font-size:13px}</style></head><body><h2>Secure Outreach could not open the approval app</h2>
<div class="error" role="alert"><p><code data-error-code="${error.code}">${error.code}</code></p><p>${escapeHtml(error.message)}</p></div>
<p>Launch the app again from the EHR. If this keeps happening, give the code above to your administrator.</p></body></html>`;
}

function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer[ ]+([A-Za-z0-9._~+/=-]{1,512})$/i.exec(header) : null;
  return m?.[1];
}

function parse<T>(schema: z.ZodType<T> | undefined, part: 'params' | 'query' | 'body', value: unknown): T {
  if (!schema) return undefined as T;
  const input = value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value } : (value ?? {});
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw validationError(part, parsed.error);
  return parsed.data;
}

const ehrOut = (e: SmartEhr) => ({
  id: e.id, name: e.name, iss: e.iss, clientId: e.clientId, redirectUri: e.redirectUri, frameOrigins: e.frameOrigins,
  autoProvision: e.autoProvision, createdBy: e.createdBy, createdAt: e.createdAt.toISOString(), disabled: e.disabledAt !== null,
});
const linkOut = (l: PractitionerLink) => ({
  practitioner: l.practitioner, username: l.username, role: l.role, provisioned: l.provisioned, createdBy: l.createdBy, createdAt: l.createdAt.toISOString(),
});

/** The SMART app plugin; register it on the API server: `server.register(smartAppPlugin, { app })`. */
export async function smartAppPlugin(server: FastifyInstance, options: SmartAppOptions): Promise<void> {
  const { app } = options;
  const log = app.log.child({ component: 'smart' });
  const assetsDir = options.assetsDir ?? defaultAssetsDir;
  const ehrFetch = options.fetchEhr ? { fetch: options.fetchEhr, close: async () => undefined } : createEhrFetch({ ca: [...loadExtraCa(app.config.extraCaFile), ...(options.ca ?? [])] });
  server.addHook('onClose', async () => ehrFetch.close());
  const registry = new SmartEhrRegistry({ db: app.db, audit: app.audit, users: app.users });
  const discovery = new EhrDiscovery(ehrFetch.fetch);
  const sessions = new SmartSessions({ db: app.db, cipher: app.cipher, idleMinutes: app.config.sessionIdleMinutes });
  const flow = new SmartLaunchFlow({
    db: app.db, cipher: app.cipher, audit: app.audit, log, registry, users: app.users, discovery, sessions, fetchEhr: ehrFetch.fetch,
    maxSessionMs: app.config.sessionAbsoluteHours * 3_600_000,
  });
  const campaigns = campaignHandlers(app);
  const secure = (request: FastifyRequest) => request.protocol === 'https';

  /** Pages may be framed by the registered EHRs' origins and nobody else; nothing is cached. */
  const pageHeaders = async (reply: FastifyReply) => {
    const origins = await registry.frameOrigins().catch(() => [] as string[]);
    reply.removeHeader('x-frame-options');
    reply.header(
      'content-security-policy',
      `default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors ${origins.length ? origins.join(' ') : "'none'"}`,
    );
    reply.header('cache-control', 'no-store');
  };

  const sendPageError = async (reply: FastifyReply, err: unknown) => {
    const error = asOutreachError(err);
    if (error.code === 'INTERNAL') log.error({ err }, 'smart launch error');
    await pageHeaders(reply);
    return reply.code(error.status).type('text/html; charset=utf-8').send(errorPage(error));
  };

  // --- the launch

  server.get(smartPaths.launch, async (request, reply) => {
    try {
      const query = request.query as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const started = await flow.begin({ iss: str(query.iss), launch: str(query.launch) });
      await pageHeaders(reply);
      reply.header('set-cookie', cookie(cookieNames(secure(request)).launch, started.binding, 600, secure(request)));
      return reply.code(302).header('location', started.authorizeUrl).send();
    } catch (err) {
      return sendPageError(reply, err);
    }
  });

  server.get(smartPaths.callback, async (request, reply) => {
    const names = cookieNames(secure(request));
    try {
      const query = request.query as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const done = await flow.complete({ code: str(query.code), state: str(query.state), error: str(query.error), binding: readCookie(request, names.launch) });
      const maxAge = (done.expiresAt.getTime() - Date.now()) / 1000;
      await pageHeaders(reply);
      reply.header('set-cookie', [cookie(names.session, done.token, maxAge, secure(request)), cookie(names.launch, '', 0, secure(request))]);
      // The code and state leave the address bar: the app opens at a URL that carries nothing.
      return reply.code(303).header('location', smartPaths.app).send();
    } catch (err) {
      reply.header('set-cookie', cookie(names.launch, '', 0, secure(request)));
      return sendPageError(reply, err);
    }
  });

  // --- the page and its assets

  server.get(smartPaths.app, async (_request, reply) => {
    const index = join(assetsDir, 'index.html');
    if (!existsSync(index)) return sendPageError(reply, fail('NOT_IMPLEMENTED', 'the approval app page is not built: run `npm run build`'));
    await pageHeaders(reply);
    return reply.type('text/html; charset=utf-8').send(readFileSync(index));
  });

  server.get(`${smartPaths.assets}/:file`, async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const path = join(assetsDir, 'assets', file);
    if (!/^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.(?:js|css)$/.test(file) || !existsSync(path)) throw fail('NOT_FOUND', 'no such asset');
    await pageHeaders(reply);
    return reply.type(file.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8').send(readFileSync(path));
  });

  // --- the page's API: the cookie is the session; state-changing calls also carry the anti-forgery header

  const smartSession = async (request: FastifyRequest, changing: boolean): Promise<{ smart: SmartSession; token: string }> => {
    const token = readCookie(request, cookieNames(secure(request)).session);
    const smart = await sessions.resolve(token);
    if (changing && !sessions.checkCsrf(token!, request.headers[csrfHeader] as string | undefined)) {
      throw fail('FORBIDDEN', 'the request lacks the anti-forgery token of this app session');
    }
    return { smart, token: token! };
  };
  const linked = (smart: SmartSession) => {
    if (!smart.session) {
      throw fail('PRACTITIONER_NOT_LINKED', `${smart.practitioner} of ${smart.ehrName} is linked to no clinician account: an admin runs \`outreach smart link-practitioner\``);
    }
    return smart.session;
  };

  server.get(smartPaths.session, async (request, reply) => {
    const { smart } = await smartSession(request, false);
    return reply.type('application/json; charset=utf-8').send({
      ehr: { id: smart.ehrId, name: smart.ehrName, iss: smart.iss },
      practitioner: smart.practitioner,
      kind: smart.kind,
      user: smart.user && { username: smart.user.username, role: smart.user.role },
      expiresAt: smart.expiresAt.toISOString(),
      csrf: smart.csrf,
    });
  });

  server.post(smartPaths.logout, async (request, reply) => {
    const { token } = await smartSession(request, true);
    await sessions.revoke(token);
    reply.header('set-cookie', cookie(cookieNames(secure(request)).session, '', 0, secure(request)));
    return reply.code(204).send();
  });

  server.get(smartPaths.review, async (request, reply) => {
    const { smart } = await smartSession(request, false);
    const { id } = request.params as { id: string };
    const details = await reviewCampaign(app, linked(smart), id);
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(details));
  });

  for (const name of pageRoutes) {
    const spec: RouteSpec = routes[name];
    const changing = spec.method !== 'GET';
    server.route({
      method: spec.method,
      url: `/smart${apiPrefix}${spec.path}`,
      handler: async (request, reply) => {
        const { smart } = await smartSession(request, changing);
        const session = linked(smart);
        const parsed = { params: parse(spec.params, 'params', request.params), query: parse(spec.query, 'query', request.query), body: parse(spec.body, 'body', request.body) };
        const context: RequestContext = { session, token: undefined, ip: request.ip, header: (h, v) => void reply.header(h, v) };
        const result = await (campaigns[name] as Handler<RouteName>)(parsed as never, context);
        if (name === 'approveCampaign' || name === 'rejectCampaign') {
          // The decision row already names the Practitioner and iss; this row puts the practitioner in the audit trail too.
          const id = (parsed.params as { id: string }).id;
          await app.audit.append({
            actor: session.username, role: session.role, action: name === 'approveCampaign' ? 'smart.approve' : 'smart.reject',
            purpose: 'operations', entity: `campaign/${id}/${smart.practitioner}`,
          });
        }
        const out = spec.response.parse(result);
        return reply.code(spec.status ?? 200).type('application/json; charset=utf-8').send(JSON.stringify(out));
      },
    });
  }

  // --- admin: EHR registration and practitioner links (bearer token of an admin, as on /api/v1)

  const admin = async (request: FastifyRequest, operation: Operation) => {
    const session = await app.users.authenticate(bearerToken(request.headers.authorization), operation);
    return { name: session.username, role: session.role };
  };
  const json = (reply: FastifyReply, status: number, body: unknown) => reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));

  server.get(`${smartPaths.admin}/ehrs`, async (request, reply) => {
    await admin(request, 'endpoints.read');
    return json(reply, 200, { ehrs: (await registry.list()).map(ehrOut) });
  });
  server.post(`${smartPaths.admin}/ehrs`, async (request, reply) => {
    const actor = await admin(request, 'endpoints.write');
    const body = parse(SmartEhrInput, 'body', request.body);
    return json(reply, 201, ehrOut(await registry.register(body, actor)));
  });
  server.patch(`${smartPaths.admin}/ehrs/:id`, async (request, reply) => {
    const actor = await admin(request, 'endpoints.write');
    const body = parse(SmartEhrUpdate, 'body', request.body);
    return json(reply, 200, ehrOut(await registry.update((request.params as { id: string }).id, body, actor)));
  });
  server.get(`${smartPaths.admin}/ehrs/:id/practitioners`, async (request, reply) => {
    await admin(request, 'users.read');
    return json(reply, 200, { links: (await registry.links((request.params as { id: string }).id)).map(linkOut) });
  });
  server.post(`${smartPaths.admin}/ehrs/:id/practitioners`, async (request, reply) => {
    const actor = await admin(request, 'users.write');
    const body = parse(PractitionerLinkInput, 'body', request.body);
    const ehr = await registry.byId((request.params as { id: string }).id);
    return json(reply, 201, linkOut(await registry.link(ehr.id, body.practitioner, body.username, actor)));
  });
  server.delete(`${smartPaths.admin}/ehrs/:id/practitioners/:practitionerId`, async (request, reply) => {
    const actor = await admin(request, 'users.write');
    const params = request.params as { id: string; practitionerId: string };
    const ehr = await registry.byId(params.id);
    await registry.unlink(ehr.id, `Practitioner/${params.practitionerId}`, actor);
    return reply.code(204).send();
  });
}
