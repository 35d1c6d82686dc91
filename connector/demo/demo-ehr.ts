// The demo EHR (and the tests' FHIR server): a loopback FHIR R4 server with search paging, injectable faults, async $export with NDJSON, and a SMART token endpoint that verifies client assertions.
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { importJWK, jwtVerify, decodeProtectedHeader, type JWK } from 'jose';

type Resource = { resourceType: string; id?: string; meta?: { lastUpdated?: string }; [k: string]: unknown };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorized: boolean;
  bearer?: string;
}

export interface Fault {
  /** Matched against `METHOD /path` (path without the query). */
  match: RegExp;
  status: number;
  retryAfter?: string;
  /** How many matching requests fail (default 1). */
  times?: number;
  body?: unknown;
}

export interface ExportSettings {
  /** 202 answers before the manifest (default 1). */
  pollsBeforeReady?: number;
  retryAfter?: string;
  requiresAccessToken?: boolean;
  /** Extra raw lines appended to a type's file (malformed JSON, invalid resources). */
  extraLines?: Record<string, string[]>;
  /** OperationOutcome resources served as the error file. */
  errors?: unknown[];
  /** Status and body for the kick-off instead of 202. */
  refuseKickoff?: { status: number; body?: unknown };
  /** Leave Practitioner and Organization out of patient-level exports (as the spec allows). */
  patientCompartmentOnly?: boolean;
}

export interface FhirTestServerOptions {
  resources?: Resource[];
  /** 'smart' (default) demands a bearer token from the token endpoint; 'none' is an open server. */
  auth?: 'smart' | 'none';
  /** How the token URL is advertised (default 'well-known'). */
  discovery?: 'well-known' | 'capability' | 'none';
  tokenLifetimeSeconds?: number;
  export?: ExportSettings;
  /** Page size when the client sends no _count. */
  defaultPageSize?: number;
  /** Serve HTTPS with this key and certificate (from the demo CA, connector/demo/demo-ca.ts). */
  tls?: { key: string; cert: string };
}

interface Client {
  jwk: JWK;
  kid?: string;
  alg: string;
}

interface Job {
  id: string;
  types: string[];
  since?: string;
  level: string;
  polls: number;
  transactionTime: string;
  deleted: boolean;
}

export interface FhirTestServer {
  /** The FHIR base URL, e.g. http://127.0.0.1:1234/fhir */
  url: string;
  tokenUrl: string;
  requests: RecordedRequest[];
  /** Every access token issued, in order. */
  tokensIssued: string[];
  /** Assertions the token endpoint refused, with why. */
  rejectedAssertions: string[];
  jobs: Job[];
  resources: Resource[];
  registerClient(clientId: string, publicJwk: JWK, alg: 'RS384' | 'ES384'): void;
  fail(fault: Fault): void;
  /** Invalidates every issued token (the next request with one gets 401). */
  revokeTokens(): void;
  export: ExportSettings;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers });
  res.end(JSON.stringify(body));
};

const oo = (code: string, diagnostics: string) => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFhirTestServer(options: FhirTestServerOptions = {}): Promise<FhirTestServer> {
  const resources = options.resources ?? [];
  const clients = new Map<string, Client>();
  const validTokens = new Set<string>();
  const usedJti = new Set<string>();
  const faults: Fault[] = [];
  const exportSettings: ExportSettings = { pollsBeforeReady: 1, retryAfter: '0', requiresAccessToken: true, ...options.export };
  const state = {
    requests: [] as RecordedRequest[],
    tokensIssued: [] as string[],
    rejectedAssertions: [] as string[],
    jobs: [] as Job[],
  };
  let base = '';
  let tokenUrl = '';

  const authorized = (req: IncomingMessage): { ok: boolean; bearer?: string } => {
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (options.auth === 'none') return { ok: true, bearer };
    return { ok: Boolean(bearer && validTokens.has(bearer)), bearer };
  };

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    const reject = (why: string) => {
      state.rejectedAssertions.push(why);
      json(res, 401, { error: 'invalid_client', error_description: why });
    };
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' });
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return reject('assertion type');
    const assertion = form.get('client_assertion') ?? '';
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      return reject('not a JWT');
    }
    const [, payloadPart] = assertion.split('.');
    const claimedIss = (() => {
      try {
        return JSON.parse(Buffer.from(payloadPart ?? '', 'base64url').toString('utf8')).iss as string;
      } catch {
        return undefined;
      }
    })();
    const client = claimedIss ? clients.get(claimedIss) : undefined;
    if (!client) return reject('unknown client');
    if (client.kid && header.kid !== client.kid) return reject('kid');
    if (header.alg !== client.alg) return reject('alg');
    try {
      const key = await importJWK(client.jwk, client.alg);
      const { payload } = await jwtVerify(assertion, key, { audience: tokenUrl, issuer: claimedIss, subject: claimedIss, algorithms: [client.alg] });
      if (typeof payload.exp !== 'number' || payload.exp - Math.floor(Date.now() / 1000) > 300) return reject('exp more than 5 minutes ahead');
      if (typeof payload.jti !== 'string') return reject('no jti');
      if (usedJti.has(payload.jti)) return reject('jti reused');
      usedJti.add(payload.jti);
    } catch (err) {
      return reject(`verification: ${(err as { code?: string }).code ?? 'failed'}`);
    }
    const scope = form.get('scope') ?? '';
    if (!/system\/\S+\.(read|rs|\*)/.test(scope)) return json(res, 400, { error: 'invalid_scope' });
    const accessToken = randomBytes(24).toString('base64url');
    validTokens.add(accessToken);
    state.tokensIssued.push(accessToken);
    json(res, 200, { access_token: accessToken, token_type: 'bearer', expires_in: options.tokenLifetimeSeconds ?? 300, scope }, { 'cache-control': 'no-store' });
  }

  // Filtered per request, not cached: callers add and replace resources in place between requests.
  const ofType = (type: string): Resource[] => resources.filter((r) => r.resourceType === type);

  function search(res: ServerResponse, type: string, query: Record<string, string>): void {
    const count = Number(query._count ?? options.defaultPageSize ?? 50);
    const offset = Number(query._offset ?? 0);
    let matches = ofType(type);
    const lu = query._lastUpdated;
    if (lu?.startsWith('gt')) matches = matches.filter((r) => (r.meta?.lastUpdated ?? '') > lu.slice(2));
    const page = matches.slice(offset, offset + count);
    const params = new URLSearchParams({ ...query, _count: String(count) });
    params.delete('_offset');
    const link = [{ relation: 'self', url: `${base}/${type}?${params}&_offset=${offset}` }];
    if (offset + count < matches.length) link.push({ relation: 'next', url: `${base}/${type}?${params}&_offset=${offset + count}` });
    json(res, 200, {
      resourceType: 'Bundle',
      type: 'searchset',
      total: matches.length,
      link,
      entry: page.map((r) => ({ fullUrl: `${base}/${type}/${r.id}`, resource: r, search: { mode: 'match' } })),
    });
  }

  function kickoff(req: IncomingMessage, res: ServerResponse, level: string, query: Record<string, string>): void {
    if (exportSettings.refuseKickoff) return json(res, exportSettings.refuseKickoff.status, exportSettings.refuseKickoff.body ?? oo('not-supported', 'export refused'));
    if (req.headers.prefer !== 'respond-async') return json(res, 400, oo('invalid', 'Prefer: respond-async required'));
    const job: Job = {
      id: randomUUID(),
      types: query._type ? query._type.split(',') : [...new Set(resources.map((r) => r.resourceType))],
      ...(query._since ? { since: query._since } : {}),
      level,
      polls: 0,
      transactionTime: new Date().toISOString(),
      deleted: false,
    };
    state.jobs.push(job);
    res.writeHead(202, { 'content-location': `${base}/bulk-status/${job.id}` });
    res.end();
  }

  function exportedOf(job: Job, type: string): Resource[] {
    if (job.level !== 'system' && exportSettings.patientCompartmentOnly && (type === 'Practitioner' || type === 'Organization')) return [];
    return ofType(type).filter((r) => !job.since || (r.meta?.lastUpdated ?? '') > job.since);
  }

  function status(res: ServerResponse, job: Job): void {
    if (job.deleted) return json(res, 404, oo('not-found', 'job deleted'));
    job.polls++;
    if (job.polls <= (exportSettings.pollsBeforeReady ?? 1)) {
      res.writeHead(202, { 'x-progress': `${Math.round((job.polls / ((exportSettings.pollsBeforeReady ?? 1) + 1)) * 100)}% done`, 'retry-after': exportSettings.retryAfter ?? '0' });
      return void res.end();
    }
    const output = job.types
      .map((type) => ({ type, count: exportedOf(job, type).length + (exportSettings.extraLines?.[type]?.length ?? 0) }))
      .filter((o) => o.count > 0)
      .map((o) => ({ ...o, url: `${base}/bulk-files/${job.id}/${o.type}.ndjson?sig=secret-signature` }));
    json(res, 200, {
      transactionTime: job.transactionTime,
      request: `${base}/$export`,
      requiresAccessToken: exportSettings.requiresAccessToken ?? true,
      output,
      error: exportSettings.errors?.length ? [{ type: 'OperationOutcome', url: `${base}/bulk-files/${job.id}/errors.ndjson` }] : [],
    });
  }

  function file(res: ServerResponse, job: Job, name: string): void {
    const lines =
      name === 'errors'
        ? (exportSettings.errors ?? []).map((e) => JSON.stringify(e))
        : [...exportedOf(job, name).map((r) => JSON.stringify(r)), ...(exportSettings.extraLines?.[name] ?? [])];
    res.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
    // Odd-sized chunks so lines straddle chunk boundaries, as they do over a real network.
    const text = lines.join('\n') + '\n';
    for (let i = 0; i < text.length; i += 997) res.write(text.slice(i, i + 997));
    res.end();
  }

  const handler: RequestListener = (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base || 'http://127.0.0.1');
      const path = url.pathname;
      const query = Object.fromEntries(url.searchParams);
      const auth = authorized(req);
      state.requests.push({ method: req.method ?? 'GET', path, query, authorized: auth.ok, ...(auth.bearer ? { bearer: auth.bearer } : {}) });
      const key = `${req.method} ${path}`;
      const fault = faults.find((f) => f.match.test(key) && (f.times ?? 1) > 0);
      if (fault) {
        fault.times = (fault.times ?? 1) - 1;
        return json(res, fault.status, fault.body ?? oo('throttled', 'slow down'), fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {});
      }
      if (path === '/fhir/.well-known/smart-configuration') {
        if (options.discovery && options.discovery !== 'well-known') return json(res, 404, oo('not-found', 'no smart configuration'));
        return json(res, 200, { token_endpoint: tokenUrl, token_endpoint_auth_methods_supported: ['private_key_jwt'], grant_types_supported: ['client_credentials'] });
      }
      if (path === '/fhir/metadata') {
        const security = options.discovery === 'capability'
          ? { extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: tokenUrl }] }] }
          : undefined;
        return json(res, 200, { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['json'], rest: [{ mode: 'server', ...(security ? { security } : {}) }] });
      }
      if (path === '/auth/token' && req.method === 'POST') return token(req, res);
      const fileMatch = /^\/fhir\/bulk-files\/([^/]+)\/([A-Za-z]+)\.ndjson$/.exec(path);
      const job = (id: string | undefined) => state.jobs.find((j) => j.id === id);
      if (fileMatch) {
        if ((exportSettings.requiresAccessToken ?? true) && !auth.ok) return json(res, 401, oo('login', 'token required'));
        const j = job(fileMatch[1]);
        return j && !j.deleted ? file(res, j, fileMatch[2]!) : json(res, 404, oo('not-found', 'no such file'));
      }
      if (!auth.ok) return json(res, 401, oo('login', 'invalid or missing bearer token'));
      const statusMatch = /^\/fhir\/bulk-status\/([^/]+)$/.exec(path);
      if (statusMatch) {
        const j = job(statusMatch[1]);
        if (!j) return json(res, 404, oo('not-found', 'no such job'));
        if (req.method === 'DELETE') {
          j.deleted = true;
          res.writeHead(202);
          return void res.end();
        }
        return status(res, j);
      }
      if (path === '/fhir/$export') return kickoff(req, res, 'system', query);
      if (path === '/fhir/Patient/$export') return kickoff(req, res, 'patient', query);
      const group = /^\/fhir\/Group\/([^/]+)\/\$export$/.exec(path);
      if (group) return kickoff(req, res, `group:${group[1]}`, query);
      const typeMatch = /^\/fhir\/([A-Z][A-Za-z]+)$/.exec(path);
      if (typeMatch && req.method === 'GET') return search(res, typeMatch[1]!, query);
      json(res, 404, oo('not-found', 'unknown route'));
    })().catch(() => {
      if (!res.headersSent) json(res, 500, oo('exception', 'test server error'));
      else res.destroy();
    });
  };
  const server = options.tls ? createTlsServer({ key: options.tls.key, cert: options.tls.cert }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = options.tls ? 'https' : 'http';
  base = `${scheme}://127.0.0.1:${port}/fhir`;
  tokenUrl = `${scheme}://127.0.0.1:${port}/auth/token`;
  return {
    url: base,
    tokenUrl,
    ...state,
    resources,
    export: exportSettings,
    registerClient: (clientId, jwk, alg) => clients.set(clientId, { jwk, alg, ...(jwk.kid ? { kid: jwk.kid } : {}) }),
    fail: (fault) => faults.push(fault),
    revokeTokens: () => validTokens.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
