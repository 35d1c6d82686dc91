// The journeys' background scheduler: one tick (catch up on written patients, run due steps) every interval until stopped; a long-running process (serve, `journey run --watch`) starts it.
import { silentLog, type Log } from '../logger.js';
import type { JourneyEngine, TickReport } from './journey-engine.js';

export interface JourneyScheduler {
  /** Runs a pass now instead of waiting for the interval. */
  poke(): void;
  /** Ends the loop after the pass under way. */
  stop(): Promise<void>;
}

export function startJourneyScheduler(
  engine: Pick<JourneyEngine, 'tick'>,
  options: { intervalMs?: number; log?: Log; onTick?: (report: TickReport) => void } = {},
): JourneyScheduler {
  const log = options.log ?? silentLog;
  const interval = Math.max(100, options.intervalMs ?? 30_000);
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      try {
        const report = await engine.tick();
        options.onTick?.(report);
        if (report.queued || report.exited || report.caughtUp) log.info({ ...report }, 'journey pass');
      } catch (err) {
        log.error({ err: err as Error }, 'journey pass failed');
      }
      if (!running) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        wake = () => (clearTimeout(t), resolve());
      });
    }
  })();
  return {
    poke: () => wake?.(),
    stop: async () => {
      running = false;
      wake?.();
      await loop;
    },
  };
}
