// What every CLI command shares: the configuration, a lazily opened app, `--json` output and progress bars.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { loadConfig, type Config } from './config.js';
import { openApp, type App } from './app.js';
import { asOutreachError } from './errors.js';

export interface CliContext {
  config(): Config;
  /** Opens the app once; later calls return the same one. */
  app(): Promise<App>;
  /** True when `--json` was given: print one JSON document and nothing else on stdout. */
  json(): boolean;
  /** Prints a command's result: JSON with `--json`, else the human text. */
  out(result: unknown, human?: (r: any) => string): void;
  /** A progress bar on stderr (silent with --json or when stderr is not a terminal). */
  progress(label: string, total: number): Progress;
  close(): Promise<void>;
}

export interface Progress {
  update(done: number, total?: number): void;
  stop(): void;
}

export function createCliContext(program: Command, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process): CliContext {
  let config: Config | undefined;
  let app: Promise<App> | undefined;
  const json = () => Boolean(program.opts().json);
  return {
    config: () => (config ??= loadConfig()),
    app: () => (app ??= openApp(config ?? loadConfig())),
    json,
    out(result, human) {
      if (json()) io.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else io.stdout.write((human ? human(result) : JSON.stringify(result, null, 2)) + '\n');
    },
    progress(label, total) {
      const tty = (io.stderr as NodeJS.WriteStream).isTTY;
      if (json() || !tty) return { update: () => undefined, stop: () => undefined };
      const bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {value}/{total} {percentage}% {eta_formatted}`, stream: io.stderr as NodeJS.WriteStream },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return {
        update: (done, t) => {
          if (t !== undefined) bar.setTotal(t);
          bar.update(done);
        },
        stop: () => bar.stop(),
      };
    },
    async close() {
      // An app that failed to open (wrong master key, store down) has nothing to close; its error is already reported.
      const opened = app ? await app.catch(() => undefined) : undefined;
      if (opened) await opened.close();
    },
  };
}

/** Wraps a command action: errors print their code and PHI-free message and set exit code 1. */
export function action<A extends unknown[]>(ctx: CliContext, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const e = asOutreachError(err);
      if (ctx.json()) process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message } }) + '\n');
      else process.stderr.write(`error ${e.code}: ${e.message}\n`);
      process.exitCode = 1;
    } finally {
      await ctx.close();
    }
  };
}
