// The SMART App Launch flow: EHR or standalone launch → authorization code with PKCE (S256), state and nonce bound server-side → token exchange → id_token validation → a clinician session.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { fail, OutreachError } from '../errors.js';
import type { Log } from '../logger.js';
import type { FieldCipher } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';
import type { UserDirectory } from '../users/users.js';
import type { SmartSessions } from './app-sessions.js';
import type { EhrDiscovery, EhrFetch } from './ehr-discovery.js';
import { practitionerOf, type SmartEhr, type SmartEhrRegistry } from './ehr-registry.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertLaunch', 'consumeLaunch', 'pruneLaunches'] as const);

/** What the app asks for: who the user is (OpenID Connect + fhirUser), the launch context, and read access to Practitioner. */
export const ehrLaunchScope = 'openid fhirUser launch user/Practitioner.rs';
export const standaloneScope = 'openid fhirUser user/Practitioner.rs';
/** How long a started launch may take to come back. */
const launchTtlMs = 10 * 60_000;
/** Allowed clock skew when checking the id_token's times. */
const clockToleranceSeconds = 30;

const TokenResponse = z.object({
  access_token: z.string().min(1).max(8192),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().int().positive().optional(),
  scope: z.string().max(4000).optional(),
  id_token: z.string().min(1).max(16384),
});

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const random = () => randomBytes(32).toString('base64url');

export interface LaunchStart {
  /** Where the browser goes next: the EHR's authorize endpoint. */
  authorizeUrl: string;
  /** The value of the launch cookie that binds the callback to this browser. */
  binding: string;
}

export interface LaunchResult {
  /** The session cookie value. */
  token: string;
  expiresAt: Date;
  practitioner: string;
  linked: boolean;
}

export interface LaunchFlowDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  log: Log;
  registry: SmartEhrRegistry;
  users: Pick<UserDirectory, 'byId'>;
  discovery: EhrDiscovery;
  sessions: SmartSessions;
  fetchEhr: EhrFetch;
  /** Longest a session may live whatever the token says (config.sessionAbsoluteHours). */
  maxSessionMs: number;
  clock?: () => Date;
}

/**
 * The audit row of a launch. A refusal's row must not hide the refusal itself, so a failure to write it is logged
 * and the refusal goes on; a successful launch fails if its row cannot be written.
 */
async function launchAudit(deps: LaunchFlowDeps, outcome: 'success' | 'denied' | 'failure', entity: string, actor = 'smart-launch', role = 'system'): Promise<void> {
  const row = deps.audit.append({ actor, role, action: 'smart.launch', purpose: 'operations', entity, outcome });
  if (outcome === 'success') {
    await row;
    return;
  }
  await row.then(
    () => undefined,
    (err: unknown) => deps.log.error({ code: (err as { code?: string }).code ?? 'INTERNAL', entity }, 'audit row of a refused smart launch not written'),
  );
}

export class SmartLaunchFlow {
  constructor(private readonly deps: LaunchFlowDeps) {}

  private now(): Date {
    return this.deps.clock?.() ?? new Date();
  }

  /**
   * Starts a launch: `launch` present is an EHR launch (the EHR's opaque launch id goes back to it), absent a
   * standalone launch. Unknown `iss` → SMART_UNKNOWN_ISS. The PKCE verifier, nonce and endpoints stay in the store.
   */
  async begin(input: { iss: string | undefined; launch: string | undefined }): Promise<LaunchStart> {
    if (input.launch !== undefined && !/^[\x21-\x7e]{1,1024}$/.test(input.launch)) throw fail('BAD_REQUEST', 'launch: not a launch id', { field: 'launch' });
    const ehr = input.iss ? await this.deps.registry.byIss(input.iss) : await this.onlyEhr(input.launch);
    if (!ehr) {
      await launchAudit(this.deps, 'denied', 'smart-ehr/unknown');
      throw fail('SMART_UNKNOWN_ISS', 'this EHR (iss) is not registered for app launch, or an admin disabled it: an admin runs `outreach smart register` or `outreach smart enable`');
    }
    const config = await this.deps.discovery.configuration(ehr.iss);
    const state = random();
    const nonce = random();
    const verifier = random();
    const binding = random();
    const at = this.now();
    const stateHash = sha256(state);
    const kind = input.launch === undefined ? 'standalone' : 'ehr';
    await this.deps.db.query(q.pruneLaunches, [at]);
    await this.deps.db.query(q.insertLaunch, [
      stateHash, ehr.id, sha256(binding), nonce,
      this.deps.cipher.seal(verifier, { table: 'smart_launches', column: 'verifier_sealed', rowId: stateHash.toString('hex') }),
      config.token_endpoint, kind, at, new Date(at.getTime() + launchTtlMs),
    ]);
    const url = new URL(config.authorization_endpoint);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: ehr.clientId,
      redirect_uri: ehr.redirectUri,
      scope: kind === 'ehr' ? ehrLaunchScope : standaloneScope,
      state,
      nonce,
      aud: ehr.iss,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...(input.launch !== undefined ? { launch: input.launch } : {}),
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { authorizeUrl: url.href, binding };
  }

  /** A standalone launch without `iss` goes to the one registered EHR; with several, the launch must name it. */
  private async onlyEhr(launch: string | undefined): Promise<SmartEhr> {
    const enabled = (await this.deps.registry.list()).filter((e) => !e.disabledAt);
    if (launch !== undefined || enabled.length !== 1) throw fail('BAD_REQUEST', 'iss: the launch names no EHR (open /smart/launch?iss=<FHIR base URL>)', { field: 'iss' });
    return enabled[0]!;
  }

  /**
   * Completes a launch at the redirect URI: the state must be one we issued, unused, unexpired and started by this
   * browser; the code is exchanged with the PKCE verifier; the id_token must verify. Every refusal is audited.
   */
  async complete(input: { code: string | undefined; state: string | undefined; binding: string | undefined; error?: string | undefined }): Promise<LaunchResult> {
    if (!input.state || input.state.length > 256) throw fail('SMART_STATE_INVALID', 'the authorization response carries no state: launch again');
    const at = this.now();
    const [launch] = await this.deps.db.query<Record<string, unknown>>(q.consumeLaunch, [sha256(input.state), at]);
    if (!launch) {
      await launchAudit(this.deps, 'denied', 'smart-launch/state');
      throw fail('SMART_STATE_INVALID', 'the state of this authorization response is unknown or was used already: launch again');
    }
    const ehr = await this.deps.registry.byId(String(launch.ehr_id));
    const entity = `smart-ehr/${ehr.id}`;
    if (ehr.disabledAt) {
      // Disabled while the user was at the EHR's sign-in: the launch it started does not finish.
      await launchAudit(this.deps, 'denied', entity);
      throw fail('SMART_UNKNOWN_ISS', 'this EHR (iss) is not registered for app launch, or an admin disabled it: an admin runs `outreach smart register` or `outreach smart enable`');
    }
    const bound = asBuffer(launch.binding_hash as Uint8Array);
    if (!input.binding || !timingSafeEqual(sha256(input.binding), bound)) {
      await launchAudit(this.deps, 'denied', entity);
      throw fail('SMART_STATE_INVALID', 'this authorization response belongs to a launch started in another browser: launch again');
    }
    if (new Date(launch.expires_at as string | Date).getTime() <= at.getTime()) {
      await launchAudit(this.deps, 'denied', entity);
      throw fail('SMART_STATE_INVALID', 'the launch took too long and expired: launch again');
    }
    if (input.error) {
      await launchAudit(this.deps, 'denied', entity);
      const code = /^[a-z_]{1,40}$/.test(input.error) ? input.error : 'error';
      throw fail('SMART_TOKEN_REJECTED', `the EHR did not authorize the app (${code})`);
    }
    if (!input.code || input.code.length > 4096) throw fail('SMART_STATE_INVALID', 'the authorization response carries no code: launch again');
    const stateHash = asBuffer(launch.state_hash as Uint8Array).toString('hex');
    const verifier = this.deps.cipher.openText(asBuffer(launch.verifier_sealed as Uint8Array), { table: 'smart_launches', column: 'verifier_sealed', rowId: stateHash });
    try {
      const tokens = await this.exchange(ehr, String(launch.token_endpoint), input.code, verifier);
      const claims = await this.verifyIdToken(ehr, tokens.id_token, String(launch.nonce));
      const practitioner = practitionerOf(String(claims.fhirUser ?? ''), ehr.iss);
      if (!practitioner) throw fail('SMART_NOT_PRACTITIONER', 'the EHR user who launched the app is not a Practitioner: only clinicians approve outreach');
      const userId = await this.deps.registry.resolveClinician(ehr, practitioner);
      const lifetimeMs = Math.min((tokens.expires_in ?? 3600) * 1000, this.deps.maxSessionMs);
      const issued = await this.deps.sessions.issue({
        ehrId: ehr.id, practitioner, iss: ehr.iss, userId: userId ?? null, accessToken: tokens.access_token,
        scope: tokens.scope ?? '', kind: launch.kind as 'ehr' | 'standalone', expiresAt: new Date(at.getTime() + lifetimeMs),
      });
      const user = userId ? await this.userName(userId) : undefined;
      await launchAudit(this.deps, 'success', `${entity}/${practitioner}`, user ?? 'smart-unlinked', user ? 'clinician' : 'system');
      this.deps.log.info({ ehr: ehr.id, linked: Boolean(userId), kind: launch.kind }, 'smart app launched');
      return { token: issued.token, expiresAt: issued.expiresAt, practitioner, linked: Boolean(userId) };
    } catch (err) {
      const code = err instanceof OutreachError ? err.code : 'INTERNAL';
      this.deps.log.warn({ ehr: ehr.id, code }, 'smart app launch refused');
      await launchAudit(this.deps, code === 'INTERNAL' || code === 'SMART_DISCOVERY_FAILED' ? 'failure' : 'denied', entity);
      throw err;
    }
  }

  private async userName(userId: string): Promise<string | undefined> {
    return (await this.deps.users.byId(userId))?.username;
  }

  /** The token request of a public client: code, redirect URI, client id and the PKCE verifier (the EHR checks it against the challenge). */
  private async exchange(ehr: SmartEhr, tokenEndpoint: string, code: string, verifier: string): Promise<z.infer<typeof TokenResponse>> {
    const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: ehr.redirectUri, client_id: ehr.clientId, code_verifier: verifier });
    let response: Response;
    try {
      response = await this.deps.fetchEhr(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
      });
    } catch {
      throw fail('SMART_DISCOVERY_FAILED', "the EHR's token endpoint cannot be reached");
    }
    const json = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!response.ok) {
      const error = typeof json?.error === 'string' && /^[a-z_]{1,40}$/.test(json.error) ? json.error : `status ${response.status}`;
      throw fail('SMART_TOKEN_REJECTED', `the EHR's token endpoint refused the authorization code (${error}): launch again`);
    }
    const parsed = TokenResponse.safeParse(json);
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'body';
      throw fail('SMART_TOKEN_REJECTED', `the EHR's token response is unusable (${field} missing or invalid)`);
    }
    return parsed.data;
  }

  /** Signature against the EHR's JWKS (read again once for an unknown key id), issuer, audience = our client id, expiry, nonce. */
  private async verifyIdToken(ehr: SmartEhr, idToken: string, nonce: string): Promise<JWTPayload> {
    const config = await this.deps.discovery.configuration(ehr.iss);
    const options = {
      issuer: config.issuer ?? ehr.iss,
      audience: ehr.clientId,
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'],
      clockTolerance: clockToleranceSeconds,
      requiredClaims: ['exp', 'iat', 'sub'],
      currentDate: this.now(),
    };
    let payload: JWTPayload;
    try {
      try {
        ({ payload } = await jwtVerify(idToken, await this.deps.discovery.keySet(config.jwks_uri!), options));
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        ({ payload } = await jwtVerify(idToken, await this.deps.discovery.keySet(config.jwks_uri!, true), options));
      }
    } catch (err) {
      throw fail('SMART_ID_TOKEN_INVALID', idTokenProblem(err));
    }
    const sent = typeof payload.nonce === 'string' ? Buffer.from(payload.nonce) : Buffer.alloc(0);
    if (sent.length !== Buffer.byteLength(nonce) || !timingSafeEqual(sent, Buffer.from(nonce))) {
      throw fail('SMART_ID_TOKEN_INVALID', 'the id_token was not issued for this launch (nonce mismatch)');
    }
    if (typeof payload.fhirUser !== 'string') throw fail('SMART_ID_TOKEN_INVALID', 'the id_token has no fhirUser claim (the scope fhirUser was not granted)');
    return payload;
  }
}

/** A clear, PHI-free reason for an id_token refusal. */
function idTokenProblem(err: unknown): string {
  if (err instanceof OutreachError) throw err;
  if (err instanceof joseErrors.JWTExpired) return 'the id_token has expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "the id_token's signature does not verify against the EHR's keys";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "the id_token is signed with a key the EHR's JWKS does not hold";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = /^[a-z_]{1,20}$/i.test(err.claim) ? err.claim : 'a claim';
    return claim === 'aud' ? 'the id_token was issued for another client (aud)' : claim === 'iss' ? 'the id_token comes from another issuer (iss)' : `the id_token's ${claim} claim is invalid`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the id_token uses a signing algorithm the app does not accept';
  return 'the id_token is malformed';
}
