// The connector API contract double for the extension e2e: a loopback HTTP server that speaks /api/v1 with real zod validation from connector/api/contract.ts and in-memory state (the real fastify server replaces it when the API lands).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  allows,
  apiPrefix,
  errorCodeSystem,
  matchRoute,
  routes,
  type Campaign,
  type ParsedRequestOf,
  type PatientSummary,
  type ResponseOf,
  type RouteName,
  type RouteSpec,
  type Segment,
  type Template,
  type User,
} from '../../../connector/api/contract.js';
import { scanText } from '../../../connector/compose/phi-scanner.js';

class DoubleError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

type Handler<N extends RouteName> = (request: ParsedRequestOf<N>, user: User | null, token: string | null) => ResponseOf<N>;
type Handlers = { [N in RouteName]?: Handler<N> };

export interface ContractDoubleSeed {
  users: { username: string; password: string; role: User['role'] }[];
  patients: Record<string, PatientSummary>;
  templates: Template[];
  segments: Segment[];
}

export interface ContractDouble {
  url: string;
  /** Origins allowed by CORS (the extension's chrome-extension:// origin). */
  allowOrigin(origin: string): void;
  campaigns: Map<string, Campaign>;
  /** Every call: route name, the URL path and query, and the status answered (never a body). */
  calls: { route: RouteName | 'unknown'; url: string; status: number }[];
  close(): Promise<void>;
}

const now = () => new Date().toISOString();

export async function startContractDouble(seed: ContractDoubleSeed): Promise<ContractDouble> {
  const users = seed.users.map((u, i) => ({
    user: { id: `u${i + 1}`, username: u.username, role: u.role, disabled: false, createdAt: now() } satisfies User,
    password: u.password,
  }));
  const sessions = new Map<string, User>();
  const campaigns = new Map<string, Campaign>();
  const calls: ContractDouble['calls'] = [];
  const origins = new Set<string>();
  let nextCampaign = 1;

  const template = (id: string) => {
    const t = seed.templates.find((x) => x.id === id);
    if (!t) throw new DoubleError(404, 'NOT_FOUND', `template ${id} not found`, 'templateId');
    return t;
  };
  const campaign = (id: string) => {
    const c = campaigns.get(id);
    if (!c) throw new DoubleError(404, 'NOT_FOUND', `campaign ${id} not found`, 'id');
    return c;
  };
  const audienceOf = (a: { kind: 'segment'; segmentId: string } | { kind: 'contact'; crmId: string }) => {
    if (a.kind === 'contact') return { kind: 'contact' as const, label: `Contact ${a.crmId}`, definition: null, count: seed.patients[a.crmId]?.found ? 1 : 0 };
    const s = seed.segments.find((x) => x.id === a.segmentId);
    if (!s) throw new DoubleError(404, 'NOT_FOUND', `segment ${a.segmentId} not found`, 'audience.segmentId');
    return { kind: 'segment' as const, label: s.name, definition: s.definition, count: s.lastCount ?? 0 };
  };
  const transition = (id: string, from: Campaign['status'], to: Campaign['status'], change: Partial<Campaign> = {}) => {
    const c = campaign(id);
    if (c.status !== from) throw new DoubleError(409, 'CAMPAIGN_STATE', `campaign is ${c.status}, not ${from}`);
    const next = { ...c, ...change, status: to };
    campaigns.set(id, next);
    return next;
  };
  /** Renders merge tags with masked sample values: the preview never shows a real name. */
  const masked = (text: string) => text.replace(/\{\{\s*patient\.firstName\s*\}\}/g, 'Z*******').replace(/\{\{\s*patient\.lastName\s*\}\}/g, 'C****');

  const handlers: Handlers = {
    login: ({ body }) => {
      const found = users.find((u) => u.user.username === body.username && u.password === body.password);
      if (!found) throw new DoubleError(401, 'LOGIN_FAILED', 'Wrong user name or password.');
      const token = randomBytes(24).toString('base64url');
      sessions.set(token, found.user);
      return { token, user: found.user, expiresAt: new Date(Date.now() + 8 * 3600_000).toISOString(), idleTimeoutSeconds: 900 };
    },
    currentSession: (_, user) => ({ user: user!, expiresAt: new Date(Date.now() + 3600_000).toISOString(), idleTimeoutSeconds: 900 }),
    logout: (_, __, token) => {
      sessions.delete(token!);
      return null;
    },
    lookupPatient: ({ query }) => {
      if (!query.crmId) throw new DoubleError(400, 'BAD_REQUEST', 'the double looks up by crmId only', 'crmId');
      return seed.patients[query.crmId] ?? { found: false, patientId: null, consent: null, lastCampaign: null };
    },
    listTemplates: () => ({ templates: seed.templates }),
    listSegments: () => ({ segments: seed.segments }),
    scanText: ({ body }) => {
      const findings = scanText(body.text);
      return { findings, blocked: findings.some((f) => f.severity === 'high') && body.field !== 'body' };
    },
    preview: ({ body }) => {
      const t = template(body.templateId);
      audienceOf(body.audience);
      const rendered = { subject: masked(t.subject), preheader: masked(t.preheader), body: masked(t.body) };
      const findings = scanText(`${t.subject}\n${t.body}`);
      return { ...rendered, scan: { findings, blocked: false } };
    },
    forecast: ({ body }) => {
      const t = template(body.templateId);
      const audience = audienceOf(body.audience);
      const modeProblem = t.usesClinicalTags && body.deliveryMode === 'tls-or-escrow' ? 'Clinical merge tags need delivery mode tls-required or escrow.' : null;
      const suppressed = body.audience.kind === 'contact' && seed.patients[body.audience.crmId]?.consent?.marketingAuthorized === false ? 1 : 0;
      const reachable = audience.count - suppressed;
      const escrow = body.deliveryMode === 'escrow' ? reachable : 0;
      return { recipients: audience.count, tls: reachable - escrow, escrow, held: 0, suppressed, modeProblem };
    },
    createCampaign: ({ body }, user) => {
      const t = template(body.templateId);
      const id = `c${nextCampaign++}`;
      const c: Campaign = {
        id,
        name: body.name,
        status: 'draft',
        purpose: body.purpose,
        deliveryMode: body.deliveryMode,
        content: { templateId: t.id, subject: t.subject, preheader: t.preheader, body: t.body },
        audience: audienceOf(body.audience),
        createdBy: user!.username,
        createdAt: now(),
        approvals: [],
        scheduledAt: null,
      };
      campaigns.set(id, c);
      return c;
    },
    submitCampaign: ({ params }) => transition(params.id, 'draft', 'pending-approval'),
    listCampaigns: ({ query }) => ({
      campaigns: [...campaigns.values()].filter((c) => !query.status || c.status === query.status).slice(0, query.limit),
      nextCursor: null,
    }),
    getCampaign: ({ params }) => campaign(params.id),
    approveCampaign: ({ params, body }, user) =>
      transition(params.id, 'pending-approval', 'approved', {
        approvals: [...campaign(params.id).approvals, { by: user!.username, decision: 'approved', comment: body.comment ?? null, at: now() }],
      }),
    rejectCampaign: ({ params, body }, user) =>
      transition(params.id, 'pending-approval', 'rejected', {
        approvals: [...campaign(params.id).approvals, { by: user!.username, decision: 'rejected', comment: body.comment, at: now() }],
      }),
    scheduleCampaign: ({ params, body }) => transition(params.id, 'approved', 'scheduled', { scheduledAt: body.at ?? now() }),
    listEndpoints: () => ({ endpoints: [] }),
    salesforceStatus: () => ({ connected: false, instanceUrl: null, username: null, lastPushAt: null, lastOptOutPullAt: null, error: null }),
    listUsers: () => ({ users: users.map((u) => u.user) }),
  };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown) => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
    }
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    res.writeHead(status, { 'content-type': status >= 400 ? 'application/fhir+json' : 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };
  const outcome = (err: DoubleError) => ({
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: err.status === 400 ? 'invalid' : 'processing',
        details: { coding: [{ system: errorCodeSystem, code: err.code }], text: err.message },
        ...(err.field ? { expression: [err.field] } : {}),
      },
    ],
  });
  const parsePart = (schema: z.ZodType | undefined, value: unknown, part: string) => {
    if (!schema) return undefined;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.map(String).join('.') || part;
      throw new DoubleError(400, 'BAD_REQUEST', `${field}: ${issue.message}`, field);
    }
    return parsed.data;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://double');
      if (req.method === 'OPTIONS') {
        const origin = req.headers.origin;
        if (origin && origins.has(origin)) {
          res.setHeader('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE');
          res.setHeader('access-control-allow-headers', 'authorization, content-type');
          res.setHeader('access-control-max-age', '600');
        }
        send(req, res, 204, undefined);
        return;
      }
      let name: RouteName | 'unknown' = 'unknown';
      try {
        if (!url.pathname.startsWith(apiPrefix)) throw new DoubleError(404, 'NOT_FOUND', 'not found');
        const match = matchRoute(req.method ?? 'GET', url.pathname.slice(apiPrefix.length));
        if (!match) throw new DoubleError(404, 'NOT_FOUND', 'no such route');
        name = match.name;
        const spec: RouteSpec = routes[name];
        const handler = handlers[name] as Handler<RouteName> | undefined;
        if (!handler) throw new DoubleError(501, 'NOT_IMPLEMENTED', `the contract double does not implement ${name}`);
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
        const user = token ? (sessions.get(token) ?? null) : null;
        if (spec.access !== 'public') {
          if (!user) throw new DoubleError(401, 'UNAUTHENTICATED', 'No valid session: sign in again.');
          if (!allows(name, user.role)) throw new DoubleError(403, 'FORBIDDEN', 'Your role does not allow this operation.');
        }
        let rawBody: unknown = undefined;
        if (spec.body) {
          try {
            rawBody = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
          } catch {
            throw new DoubleError(400, 'BAD_REQUEST', 'the body is not JSON', 'body');
          }
        }
        const request = {
          params: parsePart(spec.params, match.params, 'params'),
          query: parsePart(spec.query, Object.fromEntries(url.searchParams), 'query'),
          body: parsePart(spec.body, rawBody, 'body'),
        } as ParsedRequestOf<RouteName>;
        const result = handler(request, user, token);
        // The double holds itself to the contract too.
        const checked = spec.response.safeParse(result);
        if (!checked.success) throw new DoubleError(500, 'INTERNAL', `the double's ${name} answer breaks the contract: ${checked.error.issues[0]!.message}`);
        const status = spec.status ?? (result === null ? 204 : 200);
        calls.push({ route: name, url: req.url ?? '', status });
        send(req, res, status, status === 204 ? undefined : result);
      } catch (err) {
        const e = err instanceof DoubleError ? err : new DoubleError(500, 'INTERNAL', 'unexpected error');
        calls.push({ route: name, url: req.url ?? '', status: e.status });
        send(req, res, e.status, outcome(e));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    allowOrigin: (origin) => void origins.add(origin),
    campaigns,
    calls,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
