// Admin and operations routes: sender addresses, health and Prometheus metrics (the Salesforce state is routes/salesforce.ts).
import type { App } from '../../app.js';
import type { ApiMetrics } from '../metrics.js';
import { actorOf, sessionOf, type Handlers } from '../handler.js';
import type { SenderDirectory } from '../sender-directory.js';

export function adminHandlers(app: App, deps: { metrics: ApiMetrics; version: string; senders: SenderDirectory }): Handlers {
  const apiSender = (s: Awaited<ReturnType<SenderDirectory['list']>>[number]) => ({
    id: s.id,
    address: s.address,
    displayName: s.displayName,
    ...(s.dkimSelector ? { dkimSelector: s.dkimSelector } : {}),
    verified: s.verified,
  });
  return {
    listSenders: async () => {
      // A DKIM key published since the sender was added verifies it now.
      await deps.senders.recheck();
      return { senders: (await deps.senders.list()).map(apiSender) };
    },
    createSender: async ({ body }, context) =>
      apiSender(await deps.senders.add({ address: body.address, displayName: body.displayName, ...(body.dkimSelector ? { dkimSelector: body.dkimSelector } : {}) }, actorOf(sessionOf(context)))),
    deleteSender: async ({ params }, context) => {
      await deps.senders.remove(params.id, actorOf(sessionOf(context)));
      return null;
    },

    health: async () => {
      const store = await app.db.query('SELECT 1 AS ok').then(
        () => 'ok' as const,
        () => 'unavailable' as const,
      );
      return { status: store === 'ok' ? 'ok' : 'degraded', version: deps.version, store };
    },
    metrics: async () => deps.metrics.registry.metrics(),
  };
}
