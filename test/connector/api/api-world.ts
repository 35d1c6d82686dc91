// A running connector API for tests: the real app (PGlite or PostgreSQL) behind the real server on 127.0.0.1 port 0, with one user per role.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../../connector/config.js';
import { openApp, type App } from '../../../connector/app.js';
import { startApiServer } from '../../../connector/api/server.js';
import type { ApiServerOptions } from '../../../connector/api/server.js';
import { UserDirectory } from '../../../connector/users/users.js';
import { postgresUrl } from '../../support/postgres.js';

export const extensionOrigin = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
export const roles = ['admin', 'marketer', 'clinician'] as const;
export type RoleName = (typeof roles)[number];
export const password = 'correct horse battery staple';

export interface ApiWorld {
  app: App;
  server: FastifyInstance;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** A live bearer token per role. */
  tokens: Record<RoleName, string>;
  /** A token whose session passed its idle and absolute timeouts. */
  expiredToken: string;
  call(method: string, path: string, init?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; text: string; json: any }>;
  login(username: string, pass?: string, headers?: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startApiWorld(kind: 'pglite' | 'postgres', options: ApiServerOptions = {}, env: Record<string, string> = {}): Promise<ApiWorld> {
  const home = mkdtempSync(join(tmpdir(), 'outreach-api-'));
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig(
    {
      OUTREACH_HOME: home,
      OUTREACH_LOG_LEVEL: 'silent',
      OUTREACH_EXTENSION_ORIGINS: extensionOrigin,
      OUTREACH_DNS_SERVERS: '127.0.0.1:9',
      ...(kind === 'postgres' ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
      ...env,
    },
  );
  const app = await openApp(config, { resealInBackground: false });
  const actor = { name: 'test-setup', role: 'admin' };
  // scrypt runs on the thread pool: hash the four passwords at once.
  await Promise.all([...roles.map((role) => app.users.add({ username: role, role, password }, actor)), app.users.add({ username: 'stale', role: 'marketer', password }, actor)]);
  const { server, url } = await startApiServer(app, { host: '127.0.0.1', port: 0 }, { defaultMetrics: false, ...options });

  const call: ApiWorld['call'] = async (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    let body: string | undefined;
    if (init.raw !== undefined) body = init.raw;
    else if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const login: ApiWorld['login'] = async (username, pass = password, headers) => {
    const r = await call('POST', '/api/v1/session', { body: { username, password: pass }, ...(headers ? { headers } : {}) });
    return { status: r.status, json: r.json, headers: r.headers };
  };

  const tokens = {} as Record<RoleName, string>;
  await Promise.all(
    roles.map(async (role) => {
      const r = await login(role);
      if (r.status !== 201) throw new Error(`login of ${role} failed: ${r.status}`);
      tokens[role] = r.json.token;
    }),
  );
  // A session issued 13 hours ago (past the 12-hour absolute lifetime and the idle timeout), by the real session store.
  const past = new Date(Date.now() - 13 * 3_600_000);
  const earlier = new UserDirectory({ db: app.db, audit: app.audit, sessions: { idleMinutes: config.sessionIdleMinutes, absoluteHours: config.sessionAbsoluteHours }, clock: () => past });
  const expiredToken = (await earlier.login('stale', password)).token;

  return {
    app,
    server,
    base: url,
    tokens,
    expiredToken,
    call,
    login,
    close: async () => {
      await server.close();
      if (kind === 'postgres') await app.db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await app.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
