// A real connector for the extension's DOM tests: one seeded connector process per test run, shared by the test files (CORS open to the DOM's origin), and the extension's fetch-based client signed in to it.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { apiPrefix } from '../../../connector/api/contract.js';
import { callConnector, httpClient } from '../../../extension/background/connector-http.js';
import type { ConnectorClient } from '../../../extension/connector-client.js';

interface ConnectorInfo {
  pid: number;
  url: string;
  kind: 'pglite' | 'postgres';
  adminUsername: string;
  templateId: string;
  segmentId: string;
  patientIds: Record<string, string>;
}

export interface TestConnector extends Omit<ConnectorInfo, 'pid'> {
  /** A bearer token of `user`, for asserting through the connector's own routes. */
  token(user: { username: string; password: string }): Promise<string>;
  /** GET on the connector with a bearer token; the parsed JSON. */
  get(path: string, token: string): Promise<any>;
  /** Nothing to do: the connector serves the whole run and ends with it. */
  close(): Promise<void>;
}

const main = resolve(import.meta.dirname, '../../e2e/support/connector-main.ts');
const root = resolve(import.meta.dirname, '../..', '..');
// Test files run in worker processes of one runner process: the runner's pid names the run.
const runPid = process.ppid;
const infoFile = join(tmpdir(), `outreach-ext-connector-${runPid}.json`);
const logFile = join(tmpdir(), `outreach-ext-connector-${runPid}.log`);
/** A DOM test's fetch sends its document's origin (happy-dom's default page); a Node test's sends none. */
const domOrigin = 'http://localhost:3000';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function spawnConnector(): Promise<string> {
  // Its stderr goes to a file: a pipe inherited from this worker would hold the runner open until the connector ends.
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', main, domOrigin, String(runPid), infoFile], { cwd: root, detached: true, stdio: ['ignore', 'pipe', log] });
  closeSync(log);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`the test connector exited (${code}) before it was ready:\n${readFileSync(logFile, 'utf8').slice(-2000)}`))),
  );
  const line = await Promise.race([new Promise<string>((ok) => createInterface({ input: child.stdout! }).once('line', ok)), exited]);
  child.stdout!.destroy();
  child.unref();
  return line;
}

const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** The info the starting file writes, waiting on file changes (bounded by the runner's hook timeout); null when the file is gone (its start failed). */
async function awaitInfo(): Promise<string | null> {
  let wake = () => {};
  let watcher: ReturnType<typeof watch>;
  try {
    watcher = watch(infoFile, () => wake());
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
  try {
    for (;;) {
      const changed = new Promise<void>((ok) => (wake = ok));
      let text: string;
      try {
        text = readFileSync(infoFile, 'utf8');
      } catch (err) {
        if (missing(err)) return null;
        throw err;
      }
      if (text.trim()) return text;
      await changed;
    }
  } finally {
    watcher.close();
  }
}

let shared: Promise<ConnectorInfo> | undefined;

async function connectorInfo(): Promise<ConnectorInfo> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(infoFile, 'wx');
    } catch {
      /* another file of this run started it, or is starting it */
    }
    if (fd !== undefined) {
      try {
        const line = await spawnConnector();
        writeFileSync(fd, line);
        return JSON.parse(line) as ConnectorInfo;
      } catch (err) {
        unlinkSync(infoFile);
        throw err;
      } finally {
        closeSync(fd);
      }
    }
    const text = await awaitInfo();
    if (text === null) continue;
    const info = JSON.parse(text) as ConnectorInfo;
    if (alive(info.pid)) return info;
    // Left behind by an earlier run whose runner had the same pid: start afresh.
    unlinkSync(infoFile);
  }
  throw new Error(`cannot start or find the shared test connector (${infoFile})`);
}

/**
 * The seeded connector of this test run, started by the first file that asks. It runs outside the test's happy-dom
 * globals (their URL, fetch and window would stand in for Node's). Files share its data: tests name what they create.
 */
export async function startTestConnector(): Promise<TestConnector> {
  const page = (globalThis as { location?: Location }).location;
  if (page && page.origin !== domOrigin) throw new Error(`the shared test connector allows ${domOrigin}, and this DOM is at ${page.origin}`);
  shared ??= connectorInfo();
  const { pid: _pid, ...info } = await shared;
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
    close: async () => undefined,
  };
}

/** The extension's fetch-based client, signed in as `user` (through `fetch` when given, e.g. a recording one). */
export async function signedInClient(connector: Pick<TestConnector, 'url'>, user: { username: string; password: string }, fetch?: typeof globalThis.fetch): Promise<ConnectorClient> {
  const session = await callConnector({ baseUrl: connector.url, token: () => null }, 'login', { body: { username: user.username, password: user.password } });
  return httpClient({ baseUrl: connector.url, token: () => session.token, ...(fetch ? { fetch } : {}) });
}

/** A fetch that records each request the background makes (method, path and query, status), to prove what reached the connector. */
export function recordingFetch(): { fetch: typeof fetch; calls: Array<{ method: string; path: string; status: number }> } {
  const calls: Array<{ method: string; path: string; status: number }> = [];
  return {
    calls,
    fetch: async (input, init) => {
      const url = new URL(String(input));
      const res = await fetch(input, init);
      calls.push({ method: init?.method ?? 'GET', path: url.pathname.replace(apiPrefix, '') + url.search, status: res.status });
      return res;
    },
  };
}
