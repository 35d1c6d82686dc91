// One HTTP exchange with a FHIR endpoint: timeouts, network failures named by endpoint and cause, Retry-After parsing.
import { FhirError } from './outcome.js';

/** The slice of a structured logger the FHIR layer uses (the connector passes its pino Log). Ids and counts only. */
export interface FhirLog {
  debug(fields: Record<string, string | number | boolean | undefined>, msg: string): void;
  info(fields: Record<string, string | number | boolean | undefined>, msg: string): void;
  warn(fields: Record<string, string | number | boolean | undefined>, msg: string): void;
}

export const silentFhirLog: FhirLog = { debug: () => undefined, info: () => undefined, warn: () => undefined };

interface Named {
  name: string;
}

/**
 * Extra `fetch()` options for every request to an endpoint, e.g. `{ dispatcher }`: an undici Agent that trusts
 * additional CAs. TLS verification is never turned off here; the caller adds trust, it does not remove it.
 */
export type FetchOptions = Record<string, unknown>;

/**
 * One fetch with a timeout. A network failure becomes FHIR_ENDPOINT_UNREACHABLE naming the endpoint, its host and
 * the cause (ECONNREFUSED, ENOTFOUND, a certificate error); a timeout becomes FHIR_TIMEOUT.
 */
export async function fetchOnce(endpoint: Named, url: string, init: RequestInit, timeoutMs: number, what: string, fetchOptions?: FetchOptions): Promise<Response> {
  try {
    return await fetch(url, { ...fetchOptions, ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) } as RequestInit);
  } catch (err) {
    throw networkError(endpoint, url, err, what, timeoutMs);
  }
}

/** Maps a fetch failure to a FhirError without quoting anything the server sent. */
export function networkError(endpoint: Named, url: string, err: unknown, what: string, timeoutMs: number): FhirError {
  if (err instanceof FhirError) return err;
  const host = safeHost(url);
  const name = (err as { name?: string } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new FhirError('FHIR_TIMEOUT', `FHIR endpoint "${endpoint.name}" (${host}) did not answer the ${what} within ${Math.round(timeoutMs / 100) / 10} s`, {
      endpoint: endpoint.name,
      host,
    });
  }
  const cause = causeCode(err);
  return new FhirError('FHIR_ENDPOINT_UNREACHABLE', `FHIR endpoint "${endpoint.name}" (${host}) is unreachable during the ${what}: ${cause}`, {
    endpoint: endpoint.name,
    host,
    cause,
  });
}

function causeCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{2,64}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return 'network error';
}

export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms` (0 yields once to the event loop). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
