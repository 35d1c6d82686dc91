// A real connector for DOM tests, in its own Node process (the e2e's seeded world, CORS open to this document's origin), and the extension's fetch-based client signed in to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { apiPrefix } from '../../../connector/api/contract.js';
import { callConnector, httpClient } from '../../../extension/background/connector-http.js';
import type { ConnectorClient } from '../../../extension/connector-client.js';

export interface TestConnector {
  url: string;
  kind: 'pglite' | 'postgres';
  adminUsername: string;
  templateId: string;
  segmentId: string;
  patientIds: Record<string, string>;
  /** A bearer token of `user`, for asserting through the connector's own routes. */
  token(user: { username: string; password: string }): Promise<string>;
  /** GET on the connector with a bearer token; the parsed JSON. */
  get(path: string, token: string): Promise<any>;
  close(): Promise<void>;
}

const main = resolve(import.meta.dirname, '../../e2e/support/connector-main.ts');
const root = resolve(import.meta.dirname, '../../..');

/**
 * Starts the seeded connector. The connector runs outside this test's happy-dom globals (its URL, fetch and window
 * would stand in for Node's); the DOM's fetch speaks CORS like a browser, so the connector allows this document's origin.
 */
export async function startTestConnector(options: { previousCampaign?: boolean } = {}): Promise<TestConnector> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', main, globalThis.location.origin, ...(options.previousCampaign ? ['--previous-campaign'] : [])], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = await Promise.race([
    new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)),
    exited.then((code) => {
      throw new Error(`the test connector exited (${code}) before it was ready`);
    }),
  ]);
  const info = JSON.parse(first) as Omit<TestConnector, 'token' | 'get' | 'close'>;
  const token = async (user: { username: string; password: string }) =>
    (await callConnector({ baseUrl: info.url, token: () => null }, 'login', { body: { username: user.username, password: user.password } })).token;
  return {
    ...info,
    token,
    async get(path, bearer) {
      const res = await fetch(`${info.url}${path.startsWith('/smart/') ? '' : apiPrefix}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
      if (!res.ok) throw new Error(`GET ${path} answered ${res.status}`);
      return res.json();
    },
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}

export async function signedInClient(connector: Pick<TestConnector, 'url'>, user: { username: string; password: string }): Promise<ConnectorClient> {
  const session = await callConnector({ baseUrl: connector.url, token: () => null }, 'login', { body: { username: user.username, password: user.password } });
  return httpClient({ baseUrl: connector.url, token: () => session.token });
}
