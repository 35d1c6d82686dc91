// Bad input at the API edge: oversized, malformed, mistyped, unknown and hostile input each get a clear 4xx, nothing is stored, no PHI comes back; sign-in throttling and lockout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { createApiServer } from '../../../connector/api/server.js';
import { startApiWorld, type ApiWorld } from './api-world.js';

const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;
const fieldOf = (json: any): string | undefined => json?.issue?.[0]?.expression?.[0];

/** Strings that look like PHI: none may come back in an error body. */
const phiProbes = ['Ada Okafor', 'ada.okafor@example.org', '1961-04-12', 'MRN100042', 'Diabetes mellitus type 2', '078-05-1120'];
const sqlInjection = "x'); DROP TABLE users; --";
const scriptTag = '<script>alert(document.cookie)</script>';
const crlf = 'Ada\r\nSet-Cookie: stolen=1';

describe('bad input', () => {
  let world: ApiWorld;
  const errorBodies: string[] = [];
  const admin = () => world.tokens.admin;
  const send = async (method: string, path: string, init: Parameters<ApiWorld['call']>[2] = {}) => {
    const r = await world.call(method, `${apiPrefix}${path}`, init);
    if (r.status >= 400) errorBodies.push(r.text);
    return r;
  };
  const stored = async () => ({
    users: (await world.app.users.list()).length,
    senders: (await world.app.senders.list()).length,
    consent: (await world.app.db.query<{ n: string }>('SELECT count(*)::text AS n FROM authorization_events'))[0]!.n,
  });
  let before: Awaited<ReturnType<typeof stored>>;

  beforeAll(async () => {
    world = await startApiWorld('pglite', { loginThrottle: { maxAttempts: 10_000 }, bodyLimit: 256 * 1024 });
    before = await stored();
  });
  afterAll(async () => world?.close());

  it('answers 413 to a body over the limit', async () => {
    const r = await send('POST', '/compose/scan', { token: world.tokens.marketer, body: { text: 'a'.repeat(300 * 1024) } });
    expect(r.status).toBe(413);
    expect(codeOf(r.json)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 400 to a body that is not JSON, and 415 to one that is not declared as JSON', async () => {
    const broken = await send('POST', '/users', { token: admin(), raw: '{"username": "x", ', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    expect(codeOf(broken.json)).toBe('BAD_REQUEST');
    expect(fieldOf(broken.json)).toBe('body');

    const empty = await send('POST', '/users', { token: admin(), raw: '', headers: { 'content-type': 'application/json' } });
    expect(empty.status).toBe(400);

    const text = await send('POST', '/users', { token: admin(), raw: 'username=x', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(codeOf(text.json)).toBe('UNSUPPORTED_MEDIA_TYPE');
    const form = await send('POST', '/users', { token: admin(), raw: 'username=x&role=admin', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
  });

  it('names the field of a wrong type, a missing field, an unknown field and a bad enum value', async () => {
    const wrongType = await send('POST', '/users', { token: admin(), body: { username: 42, role: 'marketer', password: 'a long enough password' } });
    expect(wrongType.status).toBe(400);
    expect(fieldOf(wrongType.json)).toBe('username');
    expect(wrongType.json.issue[0].details.text).toMatch(/^username: expected string/);

    const missing = await send('POST', '/users', { token: admin(), body: { username: 'someone', role: 'marketer' } });
    expect(fieldOf(missing.json)).toBe('password');

    const unknown = await send('POST', '/users', { token: admin(), body: { username: 'someone', role: 'marketer', password: 'a long enough password', isSuperuser: true } });
    expect(unknown.status).toBe(400);
    expect(fieldOf(unknown.json)).toBe('isSuperuser');

    const badEnum = await send('POST', '/users', { token: admin(), body: { username: 'someone', role: 'root', password: 'a long enough password' } });
    expect(fieldOf(badEnum.json)).toBe('role');

    const nested = await send('POST', '/consent/1/grant', { token: admin(), body: { purpose: 'marketing', evidence: 'form-7', expiresAt: 'next tuesday' } });
    expect(nested.status).toBe(400);
    expect(fieldOf(nested.json)).toBe('expiresAt');

    const unknownQuery = await send('GET', '/users?debug=1', { token: admin() });
    expect(unknownQuery.status).toBe(400);
    expect(fieldOf(unknownQuery.json)).toBe('debug');

    const bodyOnGetLikeRoute = await send('POST', '/audit/verify', { token: admin(), body: { force: true } });
    expect(bodyOnGetLikeRoute.status).toBe(400);
    expect(fieldOf(bodyOnGetLikeRoute.json)).toBe('force');

    const twoKeys = await send('POST', '/patients/lookup', { token: world.tokens.marketer, body: { crmId: '003000000000001AAA', email: 'a@b.org' } });
    expect(twoKeys.status).toBe(400);
    expect(fieldOf(twoKeys.json)).toBe('crmId');
    const noKey = await send('POST', '/patients/lookup', { token: world.tokens.marketer, body: {} });
    expect(noKey.status).toBe(400);
    expect(fieldOf(noKey.json)).toBe('crmId');
  });

  it('refuses prototype pollution in a body', async () => {
    const r = await send('POST', '/users', { token: admin(), raw: '{"username":"p","role":"marketer","password":"a long enough password","__proto__":{"role":"admin"}}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    const c = await send('POST', '/users', { token: admin(), raw: '{"username":"p","role":"marketer","password":"a long enough password","constructor":{"prototype":{"x":1}}}', headers: { 'content-type': 'application/json' } });
    expect(c.status).toBe(400);
  });

  it('gives SQL, script and header-splitting strings a clear 4xx wherever they go', async () => {
    const cases: Array<[string, string, Parameters<ApiWorld['call']>[2]]> = [
      ['POST', '/users', { token: admin(), body: { username: sqlInjection, role: 'marketer', password: 'a long enough password' } }],
      ['POST', '/users', { token: admin(), body: { username: scriptTag, role: 'marketer', password: 'a long enough password' } }],
      ['POST', '/users', { token: admin(), body: { username: crlf, role: 'marketer', password: 'a long enough password' } }],
      ['POST', '/session', { body: { username: sqlInjection, password: sqlInjection } }],
      ['POST', '/session', { body: { username: `admin' --`, password: 'x' } }],
      ['GET', `/patients/lookup?crmId=${encodeURIComponent(sqlInjection)}`, { token: world.tokens.marketer }],
      ['GET', `/patients/lookup?email=${encodeURIComponent(`a@b.org' OR '1'='1`)}`, { token: world.tokens.marketer }],
      ['POST', '/patients/lookup', { token: world.tokens.marketer, body: { email: `a@b.org' OR '1'='1` } }],
      ['POST', '/patients/lookup', { token: world.tokens.marketer, body: { crmId: sqlInjection } }],
      ['GET', `/patients/lookup?crmId=${encodeURIComponent('003000000000001\r\nSet-Cookie: a=b')}`, { token: world.tokens.marketer }],
      ['GET', `/consent/${encodeURIComponent('1 OR 1=1')}`, { token: admin() }],
      ['GET', `/consent/${encodeURIComponent('1;DROP TABLE patients')}/history`, { token: admin() }],
      ['POST', '/senders', { token: admin(), body: { address: 'news@clinic.example', displayName: scriptTag } }],
      ['POST', '/senders', { token: admin(), body: { address: 'news@clinic.example', displayName: 'Clinic\r\nBcc: everyone@evil.example' } }],
      ['POST', '/senders', { token: admin(), body: { address: `x@clinic.example'); DROP TABLE senders; --` } }],
      ['PATCH', `/users/${encodeURIComponent("1' OR '1'='1")}`, { token: admin(), body: { disabled: true } }],
      ['POST', '/consent/1/revoke', { token: admin(), body: { reason: crlf, channel: 'sms' } }],
      ['GET', `/audit?cursor=${encodeURIComponent("0' OR 1=1")}`, { token: admin() }],
    ];
    for (const [method, path, init] of cases) {
      const r = await send(method, path, init);
      expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${path}`).toBeLessThan(500);
      expect(r.json.resourceType, `${method} ${path}`).toBe('OperationOutcome');
      expect(r.headers.get('set-cookie')).toBeNull();
      expect(r.text).not.toContain('<script>');
      expect(r.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack
    }
    // The tables are all there and still answer.
    expect((await send('GET', '/health')).json).toMatchObject({ status: 'ok', store: 'ok' });
    expect((await world.app.users.list()).map((u) => u.username)).toContain('admin');
  });

  it('never echoes PHI-looking input in an error body', async () => {
    const [name, email, dob, mrn, condition, ssn] = phiProbes;
    await send('POST', '/users', { token: admin(), body: { username: email, role: 'marketer', password: 'short' } });
    await send('POST', '/users', { token: admin(), body: { [email!]: name, role: 'marketer' } });
    await send('GET', `/patients/lookup?email=${encodeURIComponent(`${name}@@example.org`)}`, { token: world.tokens.marketer });
    await send('POST', '/patients/lookup', { token: world.tokens.marketer, body: { email: `${name}@@example.org` } });
    await send('GET', `/patients/lookup?crmId=${encodeURIComponent(mrn!)}`, { token: world.tokens.marketer });
    await send('POST', '/consent/1/grant', { token: admin(), body: { purpose: condition, evidence: dob, textVersion: `${ssn} ${name}` } });
    await send('POST', '/consent/1/revoke', { token: admin(), body: { reason: `${name} said ${condition}`, purpose: 'marketing', extra: ssn } });
    await send('POST', '/compose/scan', { token: world.tokens.marketer, body: { text: `${name} ${dob}`, field: condition } });
    await send('POST', '/session', { body: { username: email, password: ssn } });
    await send('POST', '/senders', { token: admin(), body: { address: `${name}@example.org` } });
    expect(errorBodies.length).toBeGreaterThan(20);
    for (const body of errorBodies) for (const probe of phiProbes) expect(body).not.toContain(probe);
  });

  it('stored nothing from any refused request', async () => {
    expect(await stored()).toEqual(before);
  });

  it('locks an account after repeated wrong passwords, even against the right one', async () => {
    await world.app.users.add({ username: 'victim', role: 'marketer', password: 'the right passphrase' }, { name: 'test-setup', role: 'admin' });
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) statuses.push(codeOf((await world.login('victim', `wrong guess ${i}`)).json)!);
    expect(statuses).toEqual(['LOGIN_FAILED', 'LOGIN_FAILED', 'LOGIN_FAILED', 'LOGIN_FAILED', 'LOCKED_OUT']);
    const right = await world.login('victim', 'the right passphrase');
    expect(right.status).toBe(429);
    expect(codeOf(right.json)).toBe('LOCKED_OUT');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(right.json.token).toBeUndefined();
    // An unknown name fails the same way as a wrong password.
    const unknown = await world.login('nobody-here', 'whatever it is');
    expect(unknown.status).toBe(401);
    expect(codeOf(unknown.json)).toBe('LOGIN_FAILED');
  });

  it('throttles sign-in attempts per client address before the lockout applies', async () => {
    const server = await createApiServer(world.app, { loginThrottle: { maxAttempts: 3, windowMs: 60_000 }, defaultMetrics: false });
    try {
      const attempt = (password: string) =>
        server.inject({ method: 'POST', url: `${apiPrefix}/session`, payload: { username: 'marketer', password }, remoteAddress: '203.0.113.9' });
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) codes.push((await attempt(`bad ${i}`)).statusCode);
      expect(codes).toEqual([401, 401, 401]);
      const limited = await attempt('correct horse battery staple');
      expect(limited.statusCode).toBe(429);
      expect(codeOf(limited.json())).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // Another address is not affected.
      const other = await server.inject({ method: 'POST', url: `${apiPrefix}/session`, payload: { username: 'marketer', password: 'correct horse battery staple' }, remoteAddress: '203.0.113.10' });
      expect(other.statusCode).toBe(201);
    } finally {
      await server.close();
    }
  });
});
