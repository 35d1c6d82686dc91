// Reads an EHR's SMART configuration (.well-known/smart-configuration) and its JWKS over verified TLS, cached for a few minutes.
import { Agent } from 'undici';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { trustedCas } from '../delivery/trust.js';
import { fail } from '../errors.js';

/** The fields of a SMART configuration the app launch uses (SMART App Launch 2.x). */
export const SmartConfiguration = z.object({
  issuer: z.string().optional(),
  jwks_uri: z.string().optional(),
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  capabilities: z.array(z.string()).optional(),
  scopes_supported: z.array(z.string()).optional(),
});
export type SmartConfiguration = z.infer<typeof SmartConfiguration>;

export type EhrFetch = (url: string, init?: RequestInit) => Promise<Response>;

export interface EhrFetchOptions {
  /** Extra trusted CAs (PEM), added to Node's roots; verification is never turned off. */
  ca?: readonly string[];
  timeoutMs?: number;
}

/** A fetch for EHR endpoints: Node's roots plus the extra CAs, a timeout, no redirects followed, no referrer. */
export function createEhrFetch(options: EhrFetchOptions = {}): { fetch: EhrFetch; close(): Promise<void> } {
  const dispatcher = options.ca?.length ? new Agent({ connect: { ca: trustedCas([...options.ca]) } }) : undefined;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    fetch: (url, init = {}) =>
      fetch(url, {
        ...init,
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
        ...(dispatcher ? ({ dispatcher } as Record<string, unknown>) : {}),
      }),
    close: async () => dispatcher?.close(),
  };
}

const sameOriginOrHttps = (raw: string, field: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fail('SMART_DISCOVERY_FAILED', `the SMART configuration's ${field} is not a URL`);
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\./.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw fail('SMART_DISCOVERY_FAILED', `the SMART configuration's ${field} is not https`);
  return url.href;
};

interface Cached<T> {
  value: T;
  until: number;
}

export class EhrDiscovery {
  private readonly configs = new Map<string, Cached<SmartConfiguration>>();
  private readonly keys = new Map<string, Cached<JWTVerifyGetKey>>();

  constructor(
    private readonly fetchEhr: EhrFetch,
    private readonly ttlMs = 5 * 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  private async getJson(url: string, what: string): Promise<unknown> {
    let response: Response;
    try {
      response = await this.fetchEhr(url, { headers: { accept: 'application/json' } });
    } catch {
      throw fail('SMART_DISCOVERY_FAILED', `the EHR's ${what} cannot be reached`);
    }
    if (!response.ok) throw fail('SMART_DISCOVERY_FAILED', `the EHR's ${what} answered ${response.status}`);
    try {
      return await response.json();
    } catch {
      throw fail('SMART_DISCOVERY_FAILED', `the EHR's ${what} is not JSON`);
    }
  }

  /** The EHR's SMART configuration; PKCE with S256 is required, every endpoint must be https (http only on loopback). */
  async configuration(iss: string): Promise<SmartConfiguration> {
    const hit = this.configs.get(iss);
    if (hit && hit.until > this.clock()) return hit.value;
    const parsed = SmartConfiguration.safeParse(await this.getJson(`${iss}/.well-known/smart-configuration`, 'smart-configuration'));
    if (!parsed.success) throw fail('SMART_DISCOVERY_FAILED', `the EHR's smart-configuration lacks ${parsed.error.issues[0]?.path.join('.') || 'a required field'}`);
    const config = parsed.data;
    if (!config.code_challenge_methods_supported?.includes('S256')) {
      throw fail('SMART_DISCOVERY_FAILED', "the EHR's smart-configuration does not offer PKCE with S256");
    }
    if (!config.jwks_uri) throw fail('SMART_DISCOVERY_FAILED', "the EHR's smart-configuration names no jwks_uri: the id_token cannot be verified");
    config.authorization_endpoint = sameOriginOrHttps(config.authorization_endpoint, 'authorization_endpoint');
    config.token_endpoint = sameOriginOrHttps(config.token_endpoint, 'token_endpoint');
    config.jwks_uri = sameOriginOrHttps(config.jwks_uri, 'jwks_uri');
    this.configs.set(iss, { value: config, until: this.clock() + this.ttlMs });
    return config;
  }

  /** The EHR's signing keys; `refresh` reads them again (a key rotation: an unknown `kid`). */
  async keySet(jwksUri: string, refresh = false): Promise<JWTVerifyGetKey> {
    const hit = this.keys.get(jwksUri);
    if (hit && !refresh && hit.until > this.clock()) return hit.value;
    const body = await this.getJson(jwksUri, 'JWKS');
    if (!body || typeof body !== 'object' || !Array.isArray((body as { keys?: unknown }).keys)) throw fail('SMART_DISCOVERY_FAILED', "the EHR's JWKS holds no keys");
    const set = createLocalJWKSet(body as JSONWebKeySet);
    this.keys.set(jwksUri, { value: set, until: this.clock() + this.ttlMs });
    return set;
  }
}
