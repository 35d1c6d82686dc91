// FHIR endpoint configuration and SMART Backend Services tokens (client_credentials with a private_key_jwt assertion).
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { clientAssertionType, smartOauthUrisExtension } from './codes.js';
import { FhirError } from './outcome.js';
import { fetchOnce, type FetchOptions, type FhirLog, silentFhirLog } from './transport.js';

/** SMART v1 (`system/Patient.read`, `system/*.read`) and v2 (`system/*.rs`, `system/Observation.rs?category=...`). */
const scope = z
  .string()
  .regex(/^(system|user|patient)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]+)(\?\S+)?$|^(launch|offline_access|online_access|openid|fhirUser)$/, {
    message: 'a SMART scope such as system/*.read or system/*.rs',
  });

const jwk = z.looseObject({
  kty: z.enum(['RSA', 'EC']),
  d: z.string(),
  kid: z.string().optional(),
  crv: z.string().optional(),
});

export const EndpointConfigSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: 'lower-case letters, digits, dot, dash or underscore' }),
    baseUrl: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
    auth: z.enum(['smart-backend', 'none']).default('smart-backend'),
    clientId: z.string().min(1).max(256).optional(),
    /** PEM (PKCS#8 or PKCS#1/SEC1) or a private JWK. A secret: never logged, sealed at rest. */
    privateKey: z.union([z.string().min(1), jwk]).optional(),
    alg: z.enum(['RS384', 'ES384']).optional(),
    kid: z.string().min(1).max(256).optional(),
    scopes: z.array(scope).min(1).default(['system/*.read']),
    /** Skips discovery when the EHR documents its token URL. */
    tokenUrl: z.url({ protocol: /^https?$/ }).optional(),
  })
  .strict();

export type EndpointInput = z.input<typeof EndpointConfigSchema>;
export type EndpointConfig = z.output<typeof EndpointConfigSchema> & { alg?: 'RS384' | 'ES384' };

export interface ParseEndpointOptions {
  /** Endpoints without auth are refused unless the caller allows them (test servers only). */
  allowOpen?: boolean;
}

/**
 * Validates an endpoint: the URL, the scopes, and for SMART the client id and a key that signs with RS384 or
 * ES384 (the algorithm is taken from the key when not given). Errors name the field, never the key.
 */
export function parseEndpointConfig(input: unknown, options: ParseEndpointOptions = {}): EndpointConfig {
  const parsed = EndpointConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(endpoint)';
    const what = field === 'privateKey' ? 'is not a PEM or a private JWK' : issue.code === 'invalid_type' ? 'is missing or of the wrong type' : `is invalid (${issue.message})`;
    throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint ${field} ${what}`, { field });
  }
  const config: EndpointConfig = parsed.data;
  if (config.auth === 'none') {
    if (!options.allowOpen) {
      throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint "${config.name}" has no auth; open endpoints need OUTREACH_OPEN_FHIR_ENDPOINTS=true`, { field: 'auth' });
    }
    return config;
  }
  if (!config.clientId) throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint "${config.name}" needs a clientId for SMART backend auth`, { field: 'clientId' });
  if (!config.privateKey) throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint "${config.name}" needs a privateKey for SMART backend auth`, { field: 'privateKey' });
  const key = loadSigningKey(config);
  return { ...config, alg: key.alg, kid: config.kid ?? key.kid };
}

interface SigningKey {
  key: KeyObject;
  alg: 'RS384' | 'ES384';
  kid?: string;
}

/** Imports the private key and checks it fits the algorithm (RSA ≥ 2048 bits for RS384, P-384 for ES384). */
export function loadSigningKey(config: Pick<EndpointConfig, 'name' | 'privateKey' | 'alg' | 'kid'>): SigningKey {
  let key: KeyObject;
  try {
    key = typeof config.privateKey === 'string'
      ? createPrivateKey(config.privateKey)
      : createPrivateKey({ key: config.privateKey as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint "${config.name}": privateKey cannot be read as a PEM or JWK private key`, { field: 'privateKey' });
  }
  const type = key.asymmetricKeyType;
  const detail = key.asymmetricKeyDetails ?? {};
  const alg = config.alg ?? (type === 'rsa' ? 'RS384' : type === 'ec' ? 'ES384' : undefined);
  const fits = (alg === 'RS384' && type === 'rsa' && (detail.modulusLength ?? 0) >= 2048) || (alg === 'ES384' && type === 'ec' && detail.namedCurve === 'secp384r1');
  if (!alg || !fits) {
    throw new FhirError('FHIR_ENDPOINT_CONFIG', `endpoint "${config.name}": the key must be RSA (2048+ bits) for RS384 or EC P-384 for ES384`, { field: 'privateKey' });
  }
  const kid = config.kid ?? (typeof config.privateKey === 'object' ? (config.privateKey as { kid?: string }).kid : undefined);
  return { key, alg, ...(kid ? { kid } : {}) };
}

/** The public JWK set an EHR administrator registers for this client (JWKS). */
export function publicJwks(config: EndpointConfig): { keys: Array<Record<string, unknown>> } {
  const { key, alg, kid } = loadSigningKey(config);
  const pub = createPublicKey(key).export({ format: 'jwk' }) as Record<string, unknown>;
  return { keys: [{ ...pub, alg, use: 'sig', ...(kid ? { kid } : {}) }] };
}

/** A fresh signing key for a new client registration, as PKCS#8 PEM. */
export function generateSigningKey(alg: 'RS384' | 'ES384'): { privateKeyPem: string; kid: string } {
  const { privateKey } = alg === 'RS384'
    ? generateKeyPairSync('rsa', { modulusLength: 3072 })
    : generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return { privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), kid: randomUUID() };
}

export interface SmartConfiguration {
  tokenEndpoint: string;
  /** Where the token URL came from. */
  discoveredFrom: '.well-known/smart-configuration' | 'CapabilityStatement' | 'configuration';
}

export interface TokenOptions {
  timeoutMs?: number;
  /** Refresh this long before the token expires (default 60 s, at most a fifth of its lifetime). */
  refreshMarginMs?: number;
  /** Assertion lifetime in seconds; SMART caps it at 300. */
  assertionLifetimeSeconds?: number;
  log?: FhirLog;
  /** The clock of the token cache (tests move it); assertions use the wall clock. */
  now?: () => number;
  fetchOptions?: FetchOptions;
}

/** Where the FHIR client gets its bearer token. `undefined` means an open endpoint. */
export interface TokenSource {
  token(): Promise<string | undefined>;
  /** Drops the cached token (after a 401) so the next call fetches a new one. */
  invalidate(): void;
}

/** Finds the token URL: `.well-known/smart-configuration`, else the CapabilityStatement's oauth-uris extension. */
export async function discoverSmartConfiguration(config: EndpointConfig, options: TokenOptions = {}): Promise<SmartConfiguration> {
  if (config.tokenUrl) return { tokenEndpoint: config.tokenUrl, discoveredFrom: 'configuration' };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const wellKnown = await fetchOnce(config, `${config.baseUrl}/.well-known/smart-configuration`, { headers: { accept: 'application/json' } }, timeoutMs, 'SMART discovery', options.fetchOptions);
  if (wellKnown.ok) {
    const body = (await wellKnown.json().catch(() => undefined)) as { token_endpoint?: unknown } | undefined;
    if (typeof body?.token_endpoint === 'string' && isHttpUrl(body.token_endpoint)) {
      return { tokenEndpoint: body.token_endpoint, discoveredFrom: '.well-known/smart-configuration' };
    }
  } else {
    await wellKnown.body?.cancel();
  }
  const metadata = await fetchOnce(config, `${config.baseUrl}/metadata`, { headers: { accept: 'application/fhir+json' } }, timeoutMs, 'CapabilityStatement', options.fetchOptions);
  if (metadata.ok) {
    const cs = (await metadata.json().catch(() => undefined)) as CapabilityLike | undefined;
    const token = tokenUrlFromCapabilityStatement(cs);
    if (token) return { tokenEndpoint: token, discoveredFrom: 'CapabilityStatement' };
  } else {
    await metadata.body?.cancel();
  }
  throw new FhirError('FHIR_DISCOVERY_FAILED', `endpoint "${config.name}": neither .well-known/smart-configuration nor the CapabilityStatement names a token URL`, { endpoint: config.name });
}

interface CapabilityLike {
  rest?: Array<{ security?: { extension?: Array<{ url?: string; extension?: Array<{ url?: string; valueUri?: string }> }> } }>;
}

function tokenUrlFromCapabilityStatement(cs: CapabilityLike | undefined): string | undefined {
  for (const rest of cs?.rest ?? []) {
    for (const ext of rest.security?.extension ?? []) {
      if (ext.url !== smartOauthUrisExtension) continue;
      const token = ext.extension?.find((e) => e.url === 'token')?.valueUri;
      if (token && isHttpUrl(token)) return token;
    }
  }
  return undefined;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Signs a client assertion: iss = sub = client id, aud = token URL, exp ≤ 5 minutes, a unique jti, the kid. */
export async function signClientAssertion(config: EndpointConfig, tokenUrl: string, options: { lifetimeSeconds?: number; now?: () => number } = {}): Promise<string> {
  const { key, alg, kid } = loadSigningKey(config);
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const lifetime = Math.min(options.lifetimeSeconds ?? 300, 300);
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })
    .setIssuer(config.clientId!)
    .setSubject(config.clientId!)
    .setAudience(tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .setJti(randomUUID())
    .sign(key);
}

export interface AccessToken {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
  scope?: string;
}

/** SMART Backend Services: a cached access token, refreshed before it expires; concurrent callers share one request. */
export class SmartBackendTokens implements TokenSource {
  private cached: (AccessToken & { issuedAt: number }) | undefined;
  private pending: Promise<AccessToken> | undefined;
  private discovered: Promise<SmartConfiguration> | undefined;
  private readonly now: () => number;
  private readonly log: FhirLog;

  constructor(
    private readonly config: EndpointConfig,
    private readonly options: TokenOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? silentFhirLog;
  }

  /** The discovered (or configured) token URL. */
  async smartConfiguration(): Promise<SmartConfiguration> {
    this.discovered ??= discoverSmartConfiguration(this.config, this.options).catch((err: unknown) => {
      this.discovered = undefined;
      throw err;
    });
    return this.discovered;
  }

  async token(): Promise<string> {
    return (await this.accessToken()).accessToken;
  }

  /** The current token with its expiry and granted scope. */
  async accessToken(): Promise<AccessToken> {
    const cached = this.cached;
    if (cached && this.now() < cached.expiresAt - this.margin(cached)) return cached;
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  private margin(token: AccessToken & { issuedAt: number }): number {
    const lifetime = token.expiresAt - token.issuedAt;
    return Math.min(this.options.refreshMarginMs ?? 60_000, Math.max(0, lifetime / 5));
  }

  private async fetchToken(): Promise<AccessToken> {
    const { tokenEndpoint } = await this.smartConfiguration();
    // The assertion always carries wall-clock times: the token server checks them against its own clock.
    const assertion = await signClientAssertion(this.config, tokenEndpoint, { lifetimeSeconds: this.options.assertionLifetimeSeconds });
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.config.scopes.join(' '),
      client_assertion_type: clientAssertionType,
      client_assertion: assertion,
    });
    const response = await fetchOnce(
      this.config,
      tokenEndpoint,
      { method: 'POST', body, headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' } },
      this.options.timeoutMs ?? 30_000,
      'token request',
      this.options.fetchOptions,
    );
    const json = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!response.ok) {
      const oauthError = typeof json?.error === 'string' && /^[a-z_]{1,64}$/.test(json.error) ? json.error : undefined;
      throw new FhirError(
        'FHIR_TOKEN_REJECTED',
        `endpoint "${this.config.name}": the token endpoint rejected the client assertion (HTTP ${response.status}${oauthError ? `, ${oauthError}` : ''})`,
        { endpoint: this.config.name, status: response.status, ...(oauthError ? { oauthError } : {}) },
      );
    }
    if (typeof json?.access_token !== 'string' || !json.access_token) {
      throw new FhirError('FHIR_TOKEN_REJECTED', `endpoint "${this.config.name}": the token response holds no access_token`, { endpoint: this.config.name });
    }
    const issuedAt = this.now();
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 300;
    const token: AccessToken = { accessToken: json.access_token, expiresAt: issuedAt + expiresIn * 1000, ...(typeof json.scope === 'string' ? { scope: json.scope } : {}) };
    this.cached = { ...token, issuedAt };
    this.log.debug({ endpoint: this.config.name, expiresIn }, 'fhir access token issued');
    return token;
  }
}

/** The token source an endpoint needs: SMART backend tokens, or none for an open endpoint. */
export function tokenSourceFor(config: EndpointConfig, options: TokenOptions = {}): TokenSource {
  if (config.auth === 'none') return { token: async () => undefined, invalidate: () => undefined };
  return new SmartBackendTokens(config, options);
}
