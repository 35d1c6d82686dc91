// The FHIR REST client: bearer tokens, search paging to the end, retry on 429/503 with Retry-After, one refresh on 401, timeouts.
import { createRequire } from 'node:module';
import { Client } from 'fhir-kit-client';
import type { Bundle, CapabilityStatement, FhirResource } from 'fhir/r4.js';
import { tokenSourceFor, type EndpointConfig, type TokenSource } from './endpoint.js';
import { FhirError } from './outcome.js';
import { delay, fetchOnce, networkError, retryAfterMs, safeHost, silentFhirLog, type FetchOptions, type FhirLog } from './transport.js';

export interface FhirClientOptions {
  tokens?: TokenSource;
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** Retries of a 429/503 answer (default 5). */
  maxRetries?: number;
  /** The longest Retry-After honoured; a longer one fails the call (default 120 s). */
  maxRetryWaitMs?: number;
  /** Page size asked with `_count` (default 500). */
  pageSize?: number;
  log?: FhirLog;
  /** Extra fetch options (an undici `dispatcher` trusting extra CAs), for every request including tokens. */
  fetchOptions?: FetchOptions;
}

export interface FhirRequestInit extends RequestInit {
  /** What the request is for, in messages ("search of Patient", "export status"). */
  what: string;
  /** Send the bearer token (default true). Bulk file downloads without requiresAccessToken pass false. */
  authorize?: boolean;
  /** Overrides the client timeout (a file download uses its own idle timeout). */
  timeoutMs?: number;
}

interface DebugModule {
  disable(): string;
  enable(namespaces: string): void;
  enabled(namespace: string): boolean;
}

/**
 * fhir-kit-client logs request headers (the bearer token) and whole response bodies (PHI) through `debug` when
 * DEBUG names its namespaces. Those namespaces are switched off whatever DEBUG says; other namespaces stay as set.
 */
export function silenceFhirKitDebug(): void {
  const debug = createRequire(import.meta.url)('debug') as DebugModule;
  if (!debug.enabled('fhir-kit-client:info') && !debug.enabled('fhir-kit-client:error')) return;
  const current = debug.disable();
  debug.enable([current, '-fhir-kit-client:*'].filter(Boolean).join(','));
}

type Decision = { kind: 'retry'; waitMs: number } | { kind: 'refresh' } | { kind: 'done' };

/**
 * Search goes through fhir-kit-client. Bulk Data kick-off, polling and NDJSON downloads use `fetch()`, because
 * fhir-kit-client reads every body whole as JSON and hides the 202 status and headers ($export needs both).
 */
export class FhirClient {
  readonly tokens: TokenSource;
  private readonly kit: Client;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly maxRetryWaitMs: number;
  private readonly pageSize: number;
  private readonly log: FhirLog;
  private readonly origin: string;
  private readonly fetchOptions: FetchOptions | undefined;

  constructor(
    readonly endpoint: EndpointConfig,
    options: FhirClientOptions = {},
  ) {
    silenceFhirKitDebug();
    this.fetchOptions = options.fetchOptions;
    this.tokens = options.tokens ?? tokenSourceFor(endpoint, { timeoutMs: options.timeoutMs, log: options.log, fetchOptions: options.fetchOptions });
    this.kit = new Client({ baseUrl: endpoint.baseUrl, ...(options.fetchOptions ? { requestOptions: options.fetchOptions } : {}) });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 5;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 120_000;
    this.pageSize = options.pageSize ?? 500;
    this.log = options.log ?? silentFhirLog;
    this.origin = new URL(endpoint.baseUrl).origin;
  }

  /** The server's CapabilityStatement (`GET [base]/metadata`). */
  async capabilityStatement(): Promise<CapabilityStatement> {
    return (await this.kitCall('CapabilityStatement request', (options) => this.kit.capabilityStatement(options))) as unknown as CapabilityStatement;
  }

  /**
   * Every page of a search, following `next` links to the end. `params` may carry `_lastUpdated=gt<instant>`
   * for incremental syncs. A `next` link to another origin is refused: the bearer token never leaves the server.
   */
  async *searchPages(resourceType: string, params: Record<string, string> = {}): AsyncGenerator<Bundle> {
    const what = `search of ${resourceType}`;
    let bundle = (await this.kitCall(what, (options) =>
      this.kit.search({ resourceType, searchParams: { _count: String(this.pageSize), ...params }, options }),
    )) as unknown as Bundle;
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      if (bundle.resourceType !== 'Bundle') throw new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" answered the ${what} with a ${String(bundle.resourceType)}, not a Bundle`, { endpoint: this.endpoint.name });
      yield bundle;
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      if (!next) return;
      this.assertSameOrigin(next, what);
      if (seen.has(next)) throw new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" repeated a next link during the ${what} (page ${page})`, { endpoint: this.endpoint.name });
      seen.add(next);
      const current = bundle;
      bundle = (await this.kitCall(what, (options) => this.kit.nextPage({ bundle: current as never, options })!)) as unknown as Bundle;
    }
  }

  /** The resources of every page of a search (matches and includes alike). */
  async *search(resourceType: string, params: Record<string, string> = {}): AsyncGenerator<FhirResource> {
    for await (const page of this.searchPages(resourceType, params)) {
      for (const entry of page.entry ?? []) if (entry.resource) yield entry.resource as FhirResource;
    }
  }

  /**
   * An authorised request with the same retry, refresh and timeout rules as search. The caller reads the body;
   * a non-2xx answer other than the retried ones is returned as is (see `httpError`).
   */
  async fetch(url: string, init: FhirRequestInit): Promise<Response> {
    const authorize = init.authorize ?? true;
    if (authorize) this.assertSameOrigin(url, init.what);
    const timeoutMs = init.timeoutMs ?? this.timeoutMs;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const token = authorize ? await this.tokens.token() : undefined;
      const headers = new Headers(init.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      const response = await fetchOnce(this.endpoint, url, { ...init, headers }, timeoutMs, init.what, this.fetchOptions);
      const decision = this.decide(response.status, response.headers, attempt, Boolean(token), refreshed, init.what);
      if (decision.kind === 'done') return response;
      await response.body?.cancel();
      if (decision.kind === 'refresh') {
        refreshed = true;
        this.tokens.invalidate();
        continue;
      }
      await delay(decision.waitMs);
    }
  }

  /** A FHIR_HTTP_ERROR for an error answer: the status and the OperationOutcome issue code, never its text. */
  async httpError(response: Response, what: string): Promise<FhirError> {
    const issue = await response
      .json()
      .then((b: { resourceType?: string; issue?: Array<{ code?: unknown }> }) => (b?.resourceType === 'OperationOutcome' && typeof b.issue?.[0]?.code === 'string' ? b.issue[0].code : undefined))
      .catch(() => undefined);
    return this.statusError(response.status, what, issue);
  }

  private statusError(status: number, what: string, issueCode?: string): FhirError {
    const code = issueCode && /^[a-z-]{1,40}$/.test(issueCode) ? issueCode : undefined;
    const hint = status === 403 ? ' (forbidden: check the scopes granted to the client)' : '';
    return new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" answered HTTP ${status}${code ? ` (${code})` : ''} to the ${what}${hint}`, {
      endpoint: this.endpoint.name,
      status,
      ...(code ? { issue: code } : {}),
    });
  }

  private decide(status: number, headers: Headers | undefined, attempt: number, hadToken: boolean, refreshed: boolean, what: string): Decision {
    if (status === 401 && hadToken) {
      if (!refreshed) {
        this.log.info({ endpoint: this.endpoint.name, what }, 'fhir access token refused; refreshing once');
        return { kind: 'refresh' };
      }
      throw new FhirError('FHIR_TOKEN_REJECTED', `endpoint "${this.endpoint.name}" refused a freshly issued access token (HTTP 401) on the ${what}`, {
        endpoint: this.endpoint.name,
        status,
      });
    }
    if ((status === 429 || status === 503) && attempt < this.maxRetries) {
      const asked = retryAfterMs(headers?.get('retry-after'));
      const waitMs = asked ?? Math.min(30_000, 1000 * 2 ** attempt);
      if (waitMs > this.maxRetryWaitMs) {
        throw new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" asked to retry the ${what} after ${Math.round(waitMs / 1000)} s, beyond the ${Math.round(this.maxRetryWaitMs / 1000)} s limit`, {
          endpoint: this.endpoint.name,
          status,
        });
      }
      this.log.info({ endpoint: this.endpoint.name, what, status, waitMs, attempt: attempt + 1 }, 'fhir request throttled; retrying');
      return { kind: 'retry', waitMs };
    }
    return { kind: 'done' };
  }

  /** Runs a fhir-kit-client call under the same rules as `fetch`. */
  private async kitCall<T>(what: string, call: (options: { headers: Record<string, string>; signal: AbortSignal }) => Promise<T>): Promise<T> {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokens.token();
      const headers: Record<string, string> = { accept: 'application/fhir+json' };
      if (token) headers.authorization = `Bearer ${token}`;
      try {
        return await call({ headers, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        const status = (err as { response?: { status?: unknown } }).response?.status;
        if (typeof status !== 'number') throw networkError(this.endpoint, this.endpoint.baseUrl, err, what, this.timeoutMs);
        const responseHeaders = (err as { config?: { headers?: unknown } }).config?.headers;
        const decision = this.decide(status, responseHeaders instanceof Headers ? responseHeaders : undefined, attempt, Boolean(token), refreshed, what);
        if (decision.kind === 'done') {
          const data = (err as { response?: { data?: { resourceType?: string; issue?: Array<{ code?: unknown }> } } }).response?.data;
          const issue = data?.resourceType === 'OperationOutcome' && typeof data.issue?.[0]?.code === 'string' ? data.issue[0].code : undefined;
          throw this.statusError(status, what, issue);
        }
        if (decision.kind === 'refresh') {
          refreshed = true;
          this.tokens.invalidate();
          continue;
        }
        await delay(decision.waitMs);
      }
    }
  }

  private assertSameOrigin(url: string, what: string): void {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" sent an invalid URL during the ${what}`, { endpoint: this.endpoint.name });
    }
    if (origin !== this.origin) {
      throw new FhirError('FHIR_HTTP_ERROR', `endpoint "${this.endpoint.name}" pointed the ${what} at another host (${safeHost(url)}); the access token is only sent to ${safeHost(this.origin)}`, {
        endpoint: this.endpoint.name,
      });
    }
  }
}
