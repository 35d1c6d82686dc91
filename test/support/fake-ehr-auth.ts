// A loopback SMART authorization server playing the EHR: .well-known/smart-configuration, an authorize endpoint with launch context (auto-approves), a token endpoint (PKCE, single-use codes, id_token with fhirUser), a JWKS, and an EHR page that frames the app.
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** How the next id_token is spoiled (one token each; the test arms it before the launch). */
export interface IdTokenTamper {
  /** Signed by a key the JWKS does not publish, under the published key id (the signature does not verify). */
  rogueSignature?: boolean;
  /** Seconds from now the token expires (negative: already expired). */
  expiresIn?: number;
  audience?: string;
  nonce?: string;
  issuer?: string;
  /** Replaces the fhirUser claim. */
  fhirUser?: string;
}

export interface FakeEhrOptions {
  /** The app's client id and redirect URI as registered with this EHR. */
  clientId: string;
  redirectUri: string;
  /** The app's launch URL (`/smart/launch` of the connector); the EHR page frames it. */
  appLaunchUrl: string;
  /** Serve HTTPS with this certificate (the connector trusts its CA); plain HTTP otherwise. */
  tls?: { key: string; cert: string };
  /** Host name in URLs (default 127.0.0.1). */
  host?: string;
  /** Access token lifetime in seconds (default 3600). */
  expiresIn?: number;
}

export interface FakeEhr {
  /** The FHIR base the EHR sends as `iss`. */
  iss: string;
  origin: string;
  /** A launch context for a practitioner (and a patient in context); returns the opaque launch id. */
  createLaunch(practitioner: string, patient?: string): string;
  /** The EHR page that frames the app for a launch of `practitioner`. */
  ehrPageUrl(practitioner: string): string;
  /** Spoils the next id_token issued. */
  tamperNext(tamper: IdTokenTamper): void;
  /** Who an authorize request without launch context signs in as (standalone launch). */
  signedInAs: string;
  /** Requests seen, for assertions: authorize parameters and token exchanges. */
  authorizeRequests: URLSearchParams[];
  tokenRequests: Array<{ params: URLSearchParams; outcome: string }>;
  close(): Promise<void>;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  scope: string;
  practitioner: string;
  patient: string | null;
  used: boolean;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

const sendJson = (res: ServerResponse, status: number, body: unknown) =>
  void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));

export async function startFakeEhr(options: FakeEhrOptions): Promise<FakeEhr> {
  const keyId = 'ehr-key-1';
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const rogue = (await generateKeyPair('RS256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: keyId, alg: 'RS256', use: 'sig' };
  const launches = new Map<string, { practitioner: string; patient: string }>();
  const codes = new Map<string, IssuedCode>();
  let tamper: IdTokenTamper | undefined;
  const authorizeRequests: URLSearchParams[] = [];
  const tokenRequests: FakeEhr['tokenRequests'] = [];
  let base = '';

  const idToken = async (code: IssuedCode): Promise<string> => {
    const t = tamper ?? {};
    tamper = undefined;
    const now = Math.floor(Date.now() / 1000);
    const key: SigningKey = t.rogueSignature ? rogue : privateKey;
    return new SignJWT({ fhirUser: t.fhirUser ?? `${base}/fhir/${code.practitioner}`, ...(t.nonce ?? code.nonce ? { nonce: t.nonce ?? code.nonce } : {}), name: 'Test Clinician' })
      .setProtectedHeader({ alg: 'RS256', kid: keyId, typ: 'JWT' })
      .setIssuer(t.issuer ?? `${base}/fhir`)
      .setSubject(code.practitioner.replace('/', '-'))
      .setAudience(t.audience ?? code.clientId)
      .setIssuedAt(now - 5)
      .setExpirationTime(now + (t.expiresIn ?? 300))
      .sign(key);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base);
    const path = url.pathname;
    if (req.method === 'GET' && path === '/fhir/.well-known/smart-configuration') {
      return sendJson(res, 200, {
        issuer: `${base}/fhir`,
        jwks_uri: `${base}/jwks`,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        grant_types_supported: ['authorization_code'],
        token_endpoint_auth_methods_supported: ['none'],
        scopes_supported: ['openid', 'fhirUser', 'launch', 'user/Practitioner.rs'],
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        capabilities: ['launch-ehr', 'launch-standalone', 'client-public', 'sso-openid-connect', 'context-ehr-patient', 'permission-user'],
      });
    }
    if (req.method === 'GET' && path === '/jwks') return sendJson(res, 200, { keys: [jwk] });
    if (req.method === 'GET' && path === '/ehr') {
      // The EHR's own page: it frames the app with a fresh launch context, as an EHR's app tab does.
      const practitioner = url.searchParams.get('practitioner') ?? 'Practitioner/unknown';
      const launch = createLaunch(practitioner);
      const src = `${options.appLaunchUrl}?iss=${encodeURIComponent(`${base}/fhir`)}&launch=${encodeURIComponent(launch)}`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Fake EHR</title>
<style>body{margin:0;font-family:sans-serif}header{background:#2d3e50;color:#fff;padding:8px 14px}iframe{border:0;width:100%;height:760px}</style></head>
<body><header>Fake EHR · signed in as ${practitioner} · Apps › Outreach approvals</header><iframe id="app" src="${src.replace(/&/g, '&amp;')}"></iframe></body></html>`);
    }
    if (req.method === 'GET' && path === '/authorize') {
      const p = url.searchParams;
      authorizeRequests.push(p);
      const redirect = p.get('redirect_uri');
      if (p.get('client_id') !== options.clientId || redirect !== options.redirectUri) return sendJson(res, 400, { error: 'invalid_request', error_description: 'unknown client or redirect_uri' });
      const back = new URL(redirect);
      const state = p.get('state');
      const refuse = (error: string) => {
        back.searchParams.set('error', error);
        if (state) back.searchParams.set('state', state);
        res.writeHead(302, { location: back.href }).end();
      };
      if (p.get('response_type') !== 'code') return refuse('unsupported_response_type');
      if (p.get('code_challenge_method') !== 'S256' || !p.get('code_challenge')) return refuse('invalid_request');
      if (p.get('aud') !== `${base}/fhir`) return refuse('invalid_request');
      const scope = p.get('scope') ?? '';
      let practitioner = fake.signedInAs;
      let patient: string | null = null;
      const launchId = p.get('launch');
      if (launchId !== null) {
        const context = launches.get(launchId);
        if (!context || !scope.split(' ').includes('launch')) return refuse('invalid_request');
        practitioner = context.practitioner;
        patient = context.patient;
      }
      const code = randomBytes(24).toString('base64url');
      codes.set(code, { clientId: options.clientId, redirectUri: redirect, challenge: p.get('code_challenge')!, nonce: p.get('nonce'), scope, practitioner, patient, used: false });
      back.searchParams.set('code', code);
      if (state) back.searchParams.set('state', state);
      return void res.writeHead(302, { location: back.href }).end();
    }
    if (req.method === 'POST' && path === '/token') {
      const params = new URLSearchParams(await readBody(req));
      const refuse = (error: string, status = 400) => {
        tokenRequests.push({ params, outcome: error });
        sendJson(res, status, { error, error_description: `refused: ${error}` });
      };
      if (params.get('grant_type') !== 'authorization_code') return refuse('unsupported_grant_type');
      const code = codes.get(params.get('code') ?? '');
      if (!code) return refuse('invalid_grant');
      // A code is good once; a second use is refused (RFC 6749 §4.1.2).
      if (code.used) return refuse('invalid_grant');
      code.used = true;
      if (params.get('client_id') !== code.clientId || params.get('redirect_uri') !== code.redirectUri) return refuse('invalid_client', 401);
      const verifier = params.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) return refuse('invalid_grant');
      tokenRequests.push({ params, outcome: 'ok' });
      return sendJson(res, 200, {
        access_token: randomBytes(32).toString('base64url'),
        token_type: 'Bearer',
        expires_in: options.expiresIn ?? 3600,
        scope: code.scope,
        id_token: await idToken(code),
        ...(code.patient ? { patient: code.patient, encounter: 'enc-1', need_patient_banner: false } : {}),
      });
    }
    sendJson(res, 404, { error: 'not_found' });
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => void handle(req, res).catch(() => sendJson(res, 500, { error: 'server_error' }));
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}`;

  function createLaunch(practitioner: string, patient = `Patient/${randomBytes(4).toString('hex')}`): string {
    const id = randomBytes(12).toString('base64url');
    launches.set(id, { practitioner, patient });
    return id;
  }

  const fake: FakeEhr = {
    iss: `${base}/fhir`,
    origin: base,
    createLaunch,
    ehrPageUrl: (practitioner) => `${base}/ehr?practitioner=${encodeURIComponent(practitioner)}`,
    tamperNext: (t) => void (tamper = t),
    signedInAs: 'Practitioner/standalone-1',
    authorizeRequests,
    tokenRequests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
