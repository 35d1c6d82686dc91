// API access: every route × {no token, expired, admin, marketer, clinician} over HTTP, the contract agreeing with the permission matrix, CORS, headers, OpenAPI, TLS.
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allows, apiPrefix, openApiDocument, routes, type RouteName, type RouteSpec } from '../../../connector/api/contract.js';
import { routeOperations } from '../../../connector/api/route-operations.js';
import { isLoopback, startApiServer } from '../../../connector/api/server.js';
import { permissions, roleList } from '../../../connector/users/permissions.js';
import { UserDirectory } from '../../../connector/users/users.js';
import { createTestCa } from '../../support/test-ca.js';
import { extensionOrigin, password, roles, startApiWorld, type ApiWorld } from './api-world.js';

const routeList = Object.entries(routes) as [RouteName, RouteSpec][];
const denials = new Set(['UNAUTHENTICATED', 'SESSION_EXPIRED', 'FORBIDDEN']);
const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;

/** A path for the route with ids that name nothing: allowed callers get 400/404/501, never a side effect. */
const pathOf = (spec: RouteSpec) => apiPrefix + spec.path.replace(/:([A-Za-z]+)/g, '999999');

describe('the contract and the permission matrix', () => {
  it('gives every route the roles of its operation in the permission matrix', () => {
    for (const [name, spec] of routeList) {
      const operation = routeOperations[name];
      if (operation === 'public') {
        expect(spec.access, name).toBe('public');
        continue;
      }
      const matrix = [...permissions[operation]].sort();
      const contract = spec.access === 'session' ? [...roleList].sort() : [...(spec.access as readonly string[])].sort();
      expect(contract, `${name} (${operation})`).toEqual(matrix);
      for (const role of roleList) expect(allows(name, role), `${name} for ${role}`).toBe((permissions[operation] as readonly string[]).includes(role));
    }
  });

  it('maps every route of the table to an operation and nothing else', () => {
    expect(Object.keys(routeOperations).sort()).toEqual(routeList.map(([n]) => n).sort());
  });
});

describe('the API over HTTP', () => {
  let world: ApiWorld;

  beforeAll(async () => {
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 } });
  });
  afterAll(async () => world?.close());

  it('allows and refuses every route for no token, an expired token and each role, as the contract says', async () => {
    const callers = [{ name: 'no token' }, { name: 'expired', token: world.expiredToken }, ...roles.map((role) => ({ name: role, role, token: world.tokens[role] }))];
    const mismatches: string[] = [];
    for (const [name, spec] of routeList) {
      for (const caller of callers) {
        let token = caller.token;
        // Signing out ends the token: use a fresh one so the other routes keep theirs.
        if (name === 'logout' && 'role' in caller) token = (await world.login(caller.role!)).json.token;
        const r = await world.call(spec.method, pathOf(spec), token ? { token } : {});
        const code = codeOf(r.json);
        let expected: string;
        if (spec.access === 'public') expected = 'allowed';
        else if (!token) expected = 'UNAUTHENTICATED';
        else if (caller.name === 'expired') expected = 'SESSION_EXPIRED';
        else expected = allows(name, (caller as { role: (typeof roles)[number] }).role) ? 'allowed' : 'FORBIDDEN';
        const got = r.status >= 500 && r.status !== 501 ? `crash ${r.status}` : code && denials.has(code) ? code : 'allowed';
        if (got !== expected) mismatches.push(`${spec.method} ${spec.path} as ${caller.name}: expected ${expected}, got ${got} (${r.status} ${code ?? ''})`);
        if (expected === 'UNAUTHENTICATED' || expected === 'SESSION_EXPIRED') {
          expect(r.status).toBe(401);
          expect(r.headers.get('www-authenticate')).toBe('Bearer');
        }
        if (expected === 'FORBIDDEN') expect(r.status).toBe(403);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('ends a session left idle past the idle timeout, and keeps one used within it', async () => {
    const signedInAt = (minutesAgo: number) =>
      new UserDirectory({ db: world.app.db, audit: world.app.audit, sessions: { idleMinutes: 15, absoluteHours: 12 }, clock: () => new Date(Date.now() - minutesAgo * 60_000) }).login('clinician', password);
    const idle = (await signedInAt(16)).token;
    const recent = (await signedInAt(14)).token;
    const refused = await world.call('GET', `${apiPrefix}/session`, { token: idle });
    expect(refused.status).toBe(401);
    expect(codeOf(refused.json)).toBe('SESSION_EXPIRED');
    const kept = await world.call('GET', `${apiPrefix}/session`, { token: recent });
    expect(kept.status).toBe(200);
    expect(kept.json.user.username).toBe('clinician');
  });

  it('signs in, shows the session and signs out, after which the token is refused', async () => {
    const login = await world.login('marketer');
    expect(login.status).toBe(201);
    expect(login.json).toMatchObject({ user: { username: 'marketer', role: 'marketer', disabled: false }, idleTimeoutSeconds: 15 * 60, passwordChangeRequired: false });
    const token = login.json.token as string;
    const me = await world.call('GET', `${apiPrefix}/session`, { token });
    expect(me.status).toBe(200);
    expect(me.json.user.username).toBe('marketer');
    expect(me.json.passwordChangeRequired).toBe(false);
    expect(me.json.token).toBeUndefined();
    expect((await world.call('DELETE', `${apiPrefix}/session`, { token })).status).toBe(204);
    const after = await world.call('GET', `${apiPrefix}/session`, { token });
    expect(after.status).toBe(401);
    expect(codeOf(after.json)).toBe('UNAUTHENTICATED');
  });

  it('refuses a disabled user at once, and an admin can disable and enable over the API', async () => {
    const created = await world.call('POST', `${apiPrefix}/users`, { token: world.tokens.admin, body: { username: 'temp-marketer', role: 'marketer', password: 'a long enough password' } });
    expect(created.status).toBe(201);
    const token = (await world.login('temp-marketer', 'a long enough password')).json.token as string;
    expect((await world.call('GET', `${apiPrefix}/templates`, { token })).status).not.toBe(401);
    const disabled = await world.call('PATCH', `${apiPrefix}/users/${created.json.id}`, { token: world.tokens.admin, body: { disabled: true } });
    expect(disabled.json).toMatchObject({ username: 'temp-marketer', disabled: true });
    const refused = await world.call('GET', `${apiPrefix}/templates`, { token });
    expect(refused.status).toBe(401);
    expect((await world.login('temp-marketer', 'a long enough password')).status).toBe(403);
    const enabled = await world.call('PATCH', `${apiPrefix}/users/${created.json.id}`, { token: world.tokens.admin, body: { disabled: false } });
    expect(enabled.json.disabled).toBe(false);
    expect((await world.login('temp-marketer', 'a long enough password')).status).toBe(201);
  });

  it('lets an admin change a role or set a password over PATCH /users/:id, ending the user sessions, but not their own', async () => {
    const created = await world.call('POST', `${apiPrefix}/users`, { token: world.tokens.admin, body: { username: 'role-changer', role: 'marketer', password: 'a long enough password' } });
    const id = created.json.id as string;
    const token = (await world.login('role-changer', 'a long enough password')).json.token as string;
    expect((await world.call('POST', `${apiPrefix}/segments/count`, { token, body: { definition: { all: [] } } })).status).not.toBe(403);
    const promoted = await world.call('PATCH', `${apiPrefix}/users/${id}`, { token: world.tokens.admin, body: { role: 'clinician' } });
    expect(promoted.status).toBe(200);
    expect(promoted.json).toMatchObject({ id, username: 'role-changer', role: 'clinician', disabled: false });
    // The old token carried the marketer role: it is over, and a new sign-in gets the clinician's rights.
    expect((await world.call('GET', `${apiPrefix}/session`, { token })).status).toBe(401);
    const clinician = (await world.login('role-changer', 'a long enough password')).json.token as string;
    expect((await world.call('GET', `${apiPrefix}/session`, { token: clinician })).json.user.role).toBe('clinician');

    const reset = await world.call('PATCH', `${apiPrefix}/users/${id}`, { token: world.tokens.admin, body: { password: 'the admin picked this one' } });
    expect(reset.status).toBe(200);
    expect((await world.call('GET', `${apiPrefix}/session`, { token: clinician })).status).toBe(401);
    expect((await world.login('role-changer', 'a long enough password')).status).toBe(401);
    const fresh = (await world.login('role-changer', 'the admin picked this one')).json.token as string;
    // An admin-set password is known to the admin: the user must change it before doing anything else.
    expect((await world.call('GET', `${apiPrefix}/campaigns`, { token: fresh })).status).toBe(403);

    const weak = await world.call('PATCH', `${apiPrefix}/users/${id}`, { token: world.tokens.admin, body: { password: 'short' } });
    expect(weak.status).toBe(400);
    const me = (await world.call('GET', `${apiPrefix}/session`, { token: world.tokens.admin })).json.user.id as string;
    const ownRole = await world.call('PATCH', `${apiPrefix}/users/${me}`, { token: world.tokens.admin, body: { role: 'marketer' } });
    expect(ownRole.status).toBe(409);
    const ownPassword = await world.call('PATCH', `${apiPrefix}/users/${me}`, { token: world.tokens.admin, body: { password: 'a new admin passphrase' } });
    expect(ownPassword.status).toBe(409);
    expect((await world.call('GET', `${apiPrefix}/session`, { token: world.tokens.admin })).json.user.role).toBe('admin');
    const actions: string[] = [];
    for await (const r of world.app.audit.search({ actionPrefix: 'user.set-' })) actions.push(`${r.action} ${r.actor}`);
    expect(actions).toEqual(['user.set-role admin', 'user.set-password admin']);
  });

  it('says in the sign-in answer that a one-time password must be changed, lets the user do nothing but change it, and says no after', async () => {
    const { oneTimePassword } = await world.app.users.add({ username: 'newcomer', role: 'clinician' }, { name: 'test-setup', role: 'admin' });
    const once = await world.login('newcomer', oneTimePassword!);
    expect(once.json).toMatchObject({ user: { username: 'newcomer' }, passwordChangeRequired: true });
    const token = once.json.token as string;
    expect((await world.call('GET', `${apiPrefix}/session`, { token })).json).toMatchObject({ passwordChangeRequired: true });
    const blocked = await world.call('GET', `${apiPrefix}/campaigns`, { token });
    expect(blocked.status).toBe(403);
    expect(blocked.json.issue[0].details.text).toMatch(/one-time password/);
    const changed = await world.call('POST', `${apiPrefix}/session/password`, { token, body: { currentPassword: oneTimePassword, newPassword: 'my own new passphrase' } });
    expect(changed.status).toBe(204);
    const after = await world.login('newcomer', 'my own new passphrase');
    expect(after.json.passwordChangeRequired).toBe(false);
    const fresh = after.json.token as string;
    expect((await world.call('GET', `${apiPrefix}/session`, { token: fresh })).json).toMatchObject({ passwordChangeRequired: false });
    expect(codeOf((await world.call('GET', `${apiPrefix}/campaigns`, { token: fresh })).json)).not.toBe('FORBIDDEN');
  });

  it('answers CORS only for the configured extension origin and refuses other origins outright', async () => {
    const preflight = await world.call('OPTIONS', `${apiPrefix}/segments`, {
      headers: { origin: extensionOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(extensionOrigin);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/);

    const foreign = await world.call('OPTIONS', `${apiPrefix}/segments`, {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();

    const allowed = await world.call('GET', `${apiPrefix}/session`, { token: world.tokens.marketer, headers: { origin: extensionOrigin } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(extensionOrigin);

    // A simple cross-site POST would run before the browser hides the answer: it must not run at all.
    const before = (await world.app.users.list()).length;
    const forged = await world.call('POST', `${apiPrefix}/users`, {
      token: world.tokens.admin,
      headers: { origin: 'https://evil.example' },
      body: { username: 'forged-user', role: 'admin', password: 'a long enough password' },
    });
    expect(forged.status).toBe(403);
    expect((await world.app.users.list()).length).toBe(before);
  });

  it('sends no-store, nosniff and frame-ancestors none on every answer, errors included', async () => {
    for (const r of [
      await world.call('GET', `${apiPrefix}/health`),
      await world.call('GET', `${apiPrefix}/users`),
      await world.call('GET', `${apiPrefix}/no-such-route`),
    ]) {
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
      expect(r.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('serves an OpenAPI document that lists every route with its operation id and roles', async () => {
    const r = await world.call('GET', `${apiPrefix}/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    for (const [name, spec] of routeList) {
      const path = `${apiPrefix}${spec.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
      const op = r.json.paths[path]?.[spec.method.toLowerCase()];
      expect(op?.operationId, `${spec.method} ${path}`).toBe(name);
      if (Array.isArray(spec.access)) expect(op['x-roles']).toEqual(spec.access);
      if (spec.body) expect(op.requestBody.content['application/json'].schema).toBeTypeOf('object');
    }
    expect(r.json).toEqual(JSON.parse(JSON.stringify(openApiDocument(r.json.info.version))));
  });

  it('exports request latency by route name and status in Prometheus text, without ids or query values', async () => {
    expect((await world.call('GET', `${apiPrefix}/patients/lookup?email=someone%40example.org`, { token: world.tokens.marketer })).status).toBe(400);
    expect((await world.call('GET', `${apiPrefix}/patients/lookup?crmId=003000000000998AAA`, { token: world.tokens.marketer })).status).toBe(200);
    expect((await world.call('POST', `${apiPrefix}/patients/lookup`, { token: world.tokens.marketer, body: { email: 'someone@example.org' } })).status).toBe(200);
    const r = await world.call('GET', `${apiPrefix}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    expect(r.text).toMatch(/outreach_api_request_duration_seconds_count\{route="lookupPatient",method="GET",status="200"\} [1-9]/);
    expect(r.text).toMatch(/outreach_api_request_duration_seconds_count\{route="lookupPatient",method="GET",status="400"\} [1-9]/);
    expect(r.text).toMatch(/outreach_api_request_duration_seconds_count\{route="lookupPatientByBody",method="POST",status="200"\} [1-9]/);
    expect(r.text).not.toMatch(/example\.org/);
    const labels = new Set([...r.text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    for (const label of labels) expect([...Object.keys(routes), 'openapi', 'jwks', 'portal', 'unsubscribe', 'tracking', 'unmatched']).toContain(label);
  });

  it('refuses plain HTTP on an address other than loopback, and serves HTTPS with the configured certificate', async () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    await expect(startApiServer(world.app, { host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });

    const ca = createTestCa();
    const leaf = ca.leaf(['localhost', '127.0.0.1']);
    const { server, url } = await startApiServer(world.app, { host: '127.0.0.1', port: 0, tls: { key: leaf.key, cert: leaf.cert } }, { defaultMetrics: false });
    try {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const answer = await new Promise<{ status: number; hsts: string | undefined; body: string }>((resolve, reject) => {
        const req = httpsRequest(`${url}${apiPrefix}/health`, { ca: ca.cert, servername: 'localhost' }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, hsts: res.headers['strict-transport-security'] as string | undefined, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).status).toBe('ok');
      expect(answer.hsts).toMatch(/max-age=/);
    } finally {
      await server.close();
    }
  });
});
