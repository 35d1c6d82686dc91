// FHIR endpoint routes (admin): the ingest registry with a key pair made here, the connection check, and syncs started in the background.
import { randomBytes } from 'node:crypto';
import type { App } from '../../app.js';
import { generateSigningKey, publicJwks, type EndpointConfig } from '../../../fhir/endpoint.js';
import { asOutreachError, fail } from '../../errors.js';
import { EndpointRegistry, type EndpointSummary } from '../../ingest/endpoint-registry.js';
import { checkEndpoint, endpointRegistry, syncRegisteredEndpoint } from '../../ingest/endpoint-sync.js';
import { loadQueries } from '../../store/db.js';
import type { Endpoint } from '../contract.js';
import { auditedBy, sessionOf, type Handlers } from '../handler.js';

const q = loadQueries(new URL('../queries.sql', import.meta.url), [
  'endpointRuns',
  'setEndpointMode',
  'deleteEndpointRun',
  'claimEndpointSync',
  'finishEndpointSync',
] as const);

interface RunRow {
  endpoint: string;
  use_bulk_export: boolean;
  last_sync_status: Endpoint['lastSyncStatus'];
  last_sync_at: Date | null;
}

export interface EndpointRoutes {
  handlers: Handlers;
  /** The public keys of every endpoint, for the EHR to fetch (SMART backend services registers a JWKS URL). */
  jwks(): Promise<{ keys: Array<Record<string, unknown>> }>;
  /** Settles when the syncs started so far have ended (server close and tests wait on it). */
  idle(): Promise<void>;
}

export function endpointRoutes(app: App, clock: () => Date = () => new Date()): EndpointRoutes {
  const registry = endpointRegistry(app);
  const running = new Set<Promise<void>>();

  const runs = async () => new Map((await app.db.query<RunRow>(q.endpointRuns)).map((r) => [r.endpoint, r]));
  const toEndpoint = (e: EndpointSummary, run: RunRow | undefined): Endpoint => ({
    id: e.name,
    name: e.name,
    baseUrl: e.baseUrl,
    ...(e.tokenUrl ? { tokenUrl: e.tokenUrl } : {}),
    // Open endpoints (test servers, OUTREACH_OPEN_FHIR_ENDPOINTS) have no client id.
    clientId: e.clientId ?? '(open endpoint)',
    ...(e.kid ? { keyId: e.kid } : {}),
    scopes: e.scopes.join(' '),
    useBulkExport: run?.use_bulk_export ?? false,
    lastSyncAt: run?.last_sync_at ? new Date(run.last_sync_at).toISOString() : null,
    lastSyncStatus: run?.last_sync_status ?? 'never',
  });
  const one = async (name: string): Promise<Endpoint> => {
    const found = (await registry.list()).find((e) => e.name === name);
    if (!found) throw fail('NOT_FOUND', 'no such FHIR endpoint', { field: 'id' });
    return toEndpoint(found, (await runs()).get(name));
  };
  const configOf = (body: { name: string; baseUrl: string; tokenUrl?: string | undefined; clientId: string; scopes: string }, key: { privateKey: NonNullable<EndpointConfig['privateKey']>; kid: string }) => ({
    name: body.name,
    baseUrl: body.baseUrl,
    auth: 'smart-backend' as const,
    clientId: body.clientId,
    privateKey: key.privateKey,
    kid: key.kid,
    scopes: body.scopes.split(/\s+/).filter(Boolean),
    ...(body.tokenUrl ? { tokenUrl: body.tokenUrl } : {}),
  });
  const inApiTerms = (err: unknown): unknown => {
    const e = asOutreachError(err);
    // The registry's `kid` is the API's `keyId`; its name rule applies to the API's name.
    return e.details.field === 'kid' ? fail(e.code, e.message, { ...e.details, field: 'keyId' }) : e;
  };

  const handlers: Handlers = {
    listEndpoints: async () => {
      const byName = await runs();
      return { endpoints: (await registry.list()).map((e) => toEndpoint(e, byName.get(e.name))) };
    },
    createEndpoint: async ({ body }, context) => {
      const session = sessionOf(context);
      // The connector holds the private key (sealed); the EHR registers the public half from /.well-known/jwks.json.
      const generated = generateSigningKey('RS384');
      await registry.add(configOf(body, { privateKey: generated.privateKeyPem, kid: body.keyId ?? generated.kid })).catch((err: unknown) => {
        throw inApiTerms(err);
      });
      await app.db.query(q.setEndpointMode, [body.name, body.useBulkExport]);
      await app.audit.append(auditedBy(session, { action: 'endpoint.create', purpose: 'administration', entity: `endpoint/${body.name}` }));
      return one(body.name);
    },
    updateEndpoint: async ({ params, body }, context) => {
      const session = sessionOf(context);
      if (params.id !== body.name) throw fail('CONFLICT', 'an endpoint keeps its name (synced patients are filed under it)', { field: 'name' });
      const current: EndpointConfig = await registry.get(params.id);
      // Replace in one transaction, keeping the key pair the EHR already trusts.
      await app.db
        .transaction(async (tx) => {
          const inTx = new EndpointRegistry(tx, app.cipher, { allowOpen: app.config.openFhirEndpoints });
          await inTx.remove(params.id);
          await inTx.add(configOf(body, { privateKey: current.privateKey!, kid: body.keyId ?? current.kid ?? generateSigningKey('RS384').kid }));
          await tx.query(q.setEndpointMode, [params.id, body.useBulkExport]);
        })
        .catch((err: unknown) => {
          throw inApiTerms(err);
        });
      await app.audit.append(auditedBy(session, { action: 'endpoint.update', purpose: 'administration', entity: `endpoint/${params.id}` }));
      return one(params.id);
    },
    deleteEndpoint: async ({ params }, context) => {
      const session = sessionOf(context);
      await registry.remove(params.id).catch(() => {
        throw fail('NOT_FOUND', 'no such FHIR endpoint', { field: 'id' });
      });
      await app.db.query(q.deleteEndpointRun, [params.id]);
      await app.audit.append(auditedBy(session, { action: 'endpoint.delete', purpose: 'administration', entity: `endpoint/${params.id}` }));
      return null;
    },
    testEndpoint: async ({ params }) => {
      await one(params.id);
      const started = performance.now();
      try {
        const check = await checkEndpoint(app, params.id);
        return {
          ok: check.patientSearch,
          fhirVersion: check.fhirVersion ?? null,
          tokenOk: check.auth === 'none' || check.token !== undefined,
          latencyMs: Math.round(performance.now() - started),
          error: check.patientSearch ? null : 'FHIR_HTTP_ERROR',
        };
      } catch (err) {
        const code = asOutreachError(err).code;
        return { ok: false, fhirVersion: null, tokenOk: false, latencyMs: Math.round(performance.now() - started), error: code };
      }
    },
    syncEndpoint: async ({ params }, context) => {
      const session = sessionOf(context);
      await one(params.id);
      const startedAt = clock();
      const syncId = `${params.id}:${startedAt.getTime()}:${randomBytes(3).toString('hex')}`;
      const [claimed] = await app.db.query<{ use_bulk_export: boolean }>(q.claimEndpointSync, [params.id, syncId, startedAt]);
      if (!claimed) throw fail('CONFLICT', 'a sync of this endpoint is running', { field: 'id' });
      await app.audit.append(auditedBy(session, { action: 'fhir.sync', purpose: 'operations', entity: `endpoint/${params.id}` }));
      const run = syncRegisteredEndpoint(app, params.id, { mode: claimed.use_bulk_export ? 'bulk' : 'search' }).then(
        () => app.db.query(q.finishEndpointSync, [params.id, syncId, 'ok', clock(), null]),
        (err: unknown) => {
          const code = asOutreachError(err).code;
          app.log.warn({ endpoint: params.id, code }, 'api-started sync failed');
          return app.db.query(q.finishEndpointSync, [params.id, syncId, 'failed', clock(), code]);
        },
      );
      const tracked = run.then(
        () => undefined,
        () => undefined,
      );
      running.add(tracked);
      void tracked.finally(() => running.delete(tracked));
      return { syncId, startedAt: startedAt.toISOString() };
    },
  };

  return {
    handlers,
    jwks: async () => {
      const keys: Array<Record<string, unknown>> = [];
      for (const e of await registry.list()) if (e.hasKey) keys.push(...publicJwks(await registry.get(e.name)).keys);
      return { keys };
    },
    idle: async () => {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}
