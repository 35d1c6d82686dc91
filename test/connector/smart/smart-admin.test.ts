// The SMART admin routes over HTTP: who may call each /smart/admin route, editing, disabling and enabling an EHR registration (audited, 400 naming the field, 404), and a disabled EHR no longer launching the app.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSmartCommands } from '../../../connector/smart/cli.js';
import { permissions, roleList, type Operation } from '../../../connector/users/permissions.js';
import { UserDirectory } from '../../../connector/users/users.js';
import { cliRunner } from '../../support/cli-runner.js';
import { storeKinds } from '../../support/postgres.js';
import { callback, cookiesOf, linkedPractitioner, startLaunch, startSmartWorld, type SmartWorld } from './smart-world.js';

const password = 'correct horse battery staple';
const codeOf = (json: any): string | undefined => json?.issue?.[0]?.details?.coding?.[0]?.code;

/** Every /smart/admin route with the operation of the permission matrix it performs; ids name nothing, so an allowed call changes nothing. */
const adminRoutes: Array<{ method: string; path: string; operation: Operation }> = [
  { method: 'GET', path: '/smart/admin/ehrs', operation: 'endpoints.read' },
  { method: 'POST', path: '/smart/admin/ehrs', operation: 'endpoints.write' },
  { method: 'PATCH', path: '/smart/admin/ehrs/999999', operation: 'endpoints.write' },
  { method: 'GET', path: '/smart/admin/ehrs/999999/practitioners', operation: 'users.read' },
  { method: 'POST', path: '/smart/admin/ehrs/999999/practitioners', operation: 'users.write' },
  { method: 'DELETE', path: '/smart/admin/ehrs/999999/practitioners/x-1', operation: 'users.write' },
];

describe.each(storeKinds)('SMART EHR administration on %s', (kind) => {
  let world: SmartWorld;
  const tokens: Record<string, string> = {};
  let expiredToken: string;

  const login = async (username: string) =>
    (await (await fetch(`${world.base}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })).json()).token as string;
  const call = async (method: string, path: string, token: string | undefined, body?: unknown) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${world.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const patch = (id: string, body: unknown, token = tokens.admin) => call('PATCH', `/smart/admin/ehrs/${id}`, token, body);
  const auditOf = async (entity: string) => {
    const rows: string[] = [];
    for await (const r of world.w.app.audit.search({ actionPrefix: 'smart.' })) if (r.entity === entity) rows.push(`${r.action} ${r.actor}`);
    return rows;
  };
  /** A registration of its own for a test, so that tests do not see each other's changes. */
  let n = 0;
  const registerEhr = async () => {
    const created = await call('POST', '/smart/admin/ehrs', tokens.admin, {
      name: `Clinic EHR ${++n}`, iss: `https://ehr-${n}.clinic.example/fhir`, clientId: `app-${n}`, redirectUri: `${world.base}/smart/callback`,
    });
    expect(created.status).toBe(201);
    return created.json as { id: string; iss: string; name: string };
  };

  beforeAll(async () => {
    world = await startSmartWorld(kind);
    for (const role of roleList) tokens[role] = await login(role);
    const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000);
    const earlier = new UserDirectory({ db: world.w.app.db, audit: world.w.app.audit, sessions: { idleMinutes: 15, absoluteHours: 12 }, clock: () => twoDaysAgo });
    expiredToken = (await earlier.login('marketer', password)).token;
  }, 90_000);
  afterAll(async () => world?.close());

  it('allows and refuses every /smart/admin route for no token, an expired token and each role, as the permission matrix says', async () => {
    const callers = [{ name: 'no token', token: undefined }, { name: 'expired', token: expiredToken }, ...roleList.map((role) => ({ name: role, role, token: tokens[role] }))];
    const mismatches: string[] = [];
    for (const route of adminRoutes) {
      for (const caller of callers) {
        const r = await call(route.method, route.path, caller.token, route.method === 'GET' || route.method === 'DELETE' ? undefined : {});
        const code = codeOf(r.json);
        const expected = !caller.token
          ? 'UNAUTHENTICATED'
          : caller.name === 'expired'
            ? 'SESSION_EXPIRED'
            : (permissions[route.operation] as readonly string[]).includes((caller as { role: string }).role)
              ? 'allowed'
              : 'FORBIDDEN';
        const got = r.status >= 500 ? `crash ${r.status}` : code === 'UNAUTHENTICATED' || code === 'SESSION_EXPIRED' || code === 'FORBIDDEN' ? code : 'allowed';
        if (got !== expected) mismatches.push(`${route.method} ${route.path} as ${caller.name}: expected ${expected}, got ${got} (${r.status} ${code ?? ''})`);
        if (expected === 'FORBIDDEN') expect(r.status).toBe(403);
        if (expected === 'UNAUTHENTICATED' || expected === 'SESSION_EXPIRED') expect(r.status).toBe(401);
      }
    }
    expect(mismatches).toEqual([]);
    // The admin's calls with ids that name nothing changed nothing.
    expect((await call('GET', '/smart/admin/ehrs', tokens.admin)).json.ehrs.map((e: { id: string }) => e.id)).toEqual([world.registration.id]);
  });

  it("lets an admin edit a registration's name, client id, redirect URI and auto-provisioning, keeping its iss, audited as an update", async () => {
    const ehr = await registerEhr();
    const edited = await patch(ehr.id, { name: 'Clinic EHR (north)', clientId: 'outreach-north', autoProvision: true });
    expect(edited.status).toBe(200);
    expect(edited.json).toMatchObject({ id: ehr.id, name: 'Clinic EHR (north)', clientId: 'outreach-north', iss: ehr.iss, autoProvision: true, disabled: false });
    const listed = (await call('GET', '/smart/admin/ehrs', tokens.admin)).json.ehrs.find((e: { id: string }) => e.id === ehr.id);
    expect(listed).toEqual(edited.json);
    // The same values again change nothing and write no audit row.
    expect((await patch(ehr.id, { name: 'Clinic EHR (north)' })).json).toEqual(edited.json);
    expect(await auditOf(`smart-ehr/${ehr.id}`)).toEqual(['smart.register admin', 'smart.update admin']);
    // The iss is what the registration is: it cannot be patched.
    const iss = await patch(ehr.id, { iss: 'https://elsewhere.example/fhir' });
    expect(iss.status).toBe(400);
    expect(iss.json.issue[0].expression).toEqual(['iss']);
  });

  it('refuses bad input with 400 naming the field, and an unknown registration with 404, changing nothing', async () => {
    const ehr = await registerEhr();
    const cases: Array<[unknown, string]> = [
      [{ name: '' }, 'name'],
      [{ name: '<script>' }, 'name'],
      [{ clientId: 'has a space' }, 'clientId'],
      [{ redirectUri: 'https://outreach.example/elsewhere' }, 'redirectUri'],
      [{ redirectUri: 'http://outreach.example/smart/callback' }, 'redirectUri'],
      [{ disabled: 'yes' }, 'disabled'],
      [{ autoProvision: 1 }, 'autoProvision'],
    ];
    for (const [body, field] of cases) {
      const r = await patch(ehr.id, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(codeOf(r.json)).toBe('BAD_REQUEST');
      expect(r.json.issue[0].expression, JSON.stringify(body)).toEqual([field]);
    }
    for (const id of ['999999', 'not-an-id']) {
      const r = await patch(id, { disabled: true });
      expect(r.status).toBe(404);
      expect(codeOf(r.json)).toBe('NOT_FOUND');
    }
    expect((await call('GET', '/smart/admin/ehrs', tokens.admin)).json.ehrs.find((e: { id: string }) => e.id === ehr.id)).toMatchObject({ name: ehr.name, disabled: false });
    expect(await auditOf(`smart-ehr/${ehr.id}`)).toEqual(['smart.register admin']);
  });

  it('stops a disabled EHR launching the app, ends its app sessions for good, and lets it launch again once enabled', async () => {
    const id = world.registration.id;
    const api = (cookie: string) => fetch(`${world.base}/smart/api/session`, { headers: { cookie, accept: 'application/json' } });
    // An app session that is open, and a launch that is at the EHR's sign-in when the admin disables the EHR.
    const open = await startLaunch(world, linkedPractitioner);
    const opened = await callback(open.callbackUrl, open.launchCookie);
    expect(opened.status).toBe(303);
    const cookie = `outreach-smart=${cookiesOf(opened)['outreach-smart']!.value}`;
    expect((await api(cookie)).status).toBe(200);
    const inFlight = await startLaunch(world, linkedPractitioner);

    const disabled = await patch(id, { disabled: true });
    expect(disabled.json).toMatchObject({ id, disabled: true });

    const launch = await fetch(`${world.base}/smart/launch?iss=${encodeURIComponent(world.ehr.iss)}&launch=${world.ehr.createLaunch(linkedPractitioner)}`, { redirect: 'manual' });
    const html = await launch.text();
    expect(launch.status).toBe(400);
    expect(html).toContain('data-error-code="SMART_UNKNOWN_ISS"');
    expect(launch.headers.get('location')).toBeNull();
    // The disabled EHR may frame the app no more.
    expect(launch.headers.get('content-security-policy')).not.toContain(world.ehr.origin);
    const late = await callback(inFlight.callbackUrl, inFlight.launchCookie);
    expect(late.status).toBe(400);
    expect(await late.text()).toContain('data-error-code="SMART_UNKNOWN_ISS"');
    expect(cookiesOf(late)['outreach-smart']).toBeUndefined();
    expect((await api(cookie)).status).toBe(401);

    const enabled = await patch(id, { disabled: false });
    expect(enabled.json).toMatchObject({ id, disabled: false });
    // The session that ended stays ended; a new launch works.
    expect((await api(cookie)).status).toBe(401);
    const again = await startLaunch(world, linkedPractitioner);
    expect((await callback(again.callbackUrl, again.launchCookie)).status).toBe(303);
    const rows = await auditOf(`smart-ehr/${id}`);
    expect(rows.filter((r) => r === 'smart.disable admin' || r === 'smart.enable admin')).toEqual(['smart.disable admin', 'smart.enable admin']);
  });

  it('edits, disables and enables a registration from the CLI as well', async () => {
    const ehr = await registerEhr();
    const run = cliRunner([registerSmartCommands], () => world.w.app);
    const updated = await run(['smart', 'update', '--ehr', ehr.iss, '--client-id', 'from-cli', '--auto-provision', 'yes']);
    expect(updated.out).toMatchObject({ id: ehr.id, clientId: 'from-cli', autoProvision: true, iss: ehr.iss });
    expect((await run(['smart', 'disable', '--ehr', ehr.id])).out).toMatchObject({ id: ehr.id, disabledAt: expect.anything() });
    expect((await run(['smart', 'enable', '--ehr', ehr.id])).out).toMatchObject({ id: ehr.id, disabledAt: null });
    const bad = await run(['smart', 'update', '--ehr', ehr.id, '--auto-provision', 'maybe'], false);
    expect(bad.exitCode).not.toBe(0);
  });
});
