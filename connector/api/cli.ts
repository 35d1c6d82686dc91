// `outreach serve`: the connector API, portal, unsubscribe and tracking over HTTPS (or plain HTTP on loopback), and the delivery worker.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { asOutreachError, fail } from '../errors.js';
import { openJourneys } from '../journeys/open-journeys.js';
import { startJourneyScheduler } from '../journeys/scheduler.js';
import { isLoopback, startApiServer } from './server.js';

export function registerServeCommands(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('serve the connector API (HTTPS with OUTREACH_TLS_CERT/OUTREACH_TLS_KEY; plain HTTP only on loopback)')
    .option('--host <address>', 'listen address (default OUTREACH_API_HOST or 127.0.0.1)')
    .option('--port <port>', 'listen port (default OUTREACH_API_PORT or 8787; 0 picks a free one)')
    .option('--no-deliver', 'do not run the delivery worker in this process (run `outreach send run --watch` elsewhere)')
    .action(
      action(ctx, async (opts: { host?: string; port?: string; deliver: boolean }) => {
        const config = ctx.config();
        if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
          throw fail('INVALID_CONFIG', 'set both OUTREACH_TLS_CERT and OUTREACH_TLS_KEY, or neither');
        }
        const port = opts.port === undefined ? config.apiPort : Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw fail('BAD_REQUEST', 'port must be 0-65535', { field: 'port' });
        const readPem = (file: string, what: string) => {
          try {
            return readFileSync(file);
          } catch {
            throw fail('INVALID_CONFIG', `cannot read the TLS ${what} file named by OUTREACH_TLS_${what.toUpperCase()}`);
          }
        };
        const tls = config.tlsCert && config.tlsKey ? { cert: readPem(config.tlsCert, 'cert'), key: readPem(config.tlsKey, 'key') } : undefined;
        const host = opts.host ?? config.apiHost;
        // Refuse before the store opens: plain HTTP leaves this machine only over TLS.
        if (!tls && !isLoopback(host)) {
          throw fail('INVALID_CONFIG', `plain HTTP is served only on loopback; set OUTREACH_TLS_CERT and OUTREACH_TLS_KEY to listen on ${host}`);
        }
        const app = await ctx.app();
        const { server, url } = await startApiServer(app, { host, port, ...(tls ? { tls } : {}) });
        // Scheduled campaigns and queued messages go out from here unless another process runs the worker.
        const sending = opts.deliver
          ? await app.sending().catch((err: unknown) => {
              app.log.warn({ code: asOutreachError(err).code }, 'delivery worker not started');
              return undefined;
            })
          : undefined;
        sending?.start();
        // Journeys follow facts written by syncs in this process and wake on a schedule for due steps.
        const journeys = opts.deliver ? await openJourneys(app) : undefined;
        const scheduler = journeys ? startJourneyScheduler(journeys.engine, { log: app.log }) : undefined;
        ctx.out(
          { url, api: `${url}/api/v1`, tls: Boolean(tls), delivering: Boolean(sending), journeys: Boolean(scheduler) },
          (r: { api: string; tls: boolean; delivering: boolean; journeys: boolean }) =>
            `serving the connector API at ${r.api}${r.tls ? '' : ' (plain HTTP, loopback only)'}${r.delivering ? '; delivery worker running' : ''}${r.journeys ? '; journey scheduler running' : ''}`,
        );
        app.log.info({ tls: Boolean(tls) }, 'api listening');
        const signal = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
        app.log.info({ signal: String(signal[0] ?? 'signal') }, 'api stopping');
        await scheduler?.stop();
        journeys?.close();
        await sending?.stop();
        await server.close();
      }),
    );
}
