// Runs `outreach` command registrations in-process against a given app: captures what they print and their exit code.
import { Command } from 'commander';
import type { App } from '../../connector/app.js';
import type { CliContext } from '../../connector/cli-context.js';

export interface CliRun {
  /** The parsed JSON result (with json) or the human text of the first print. */
  out: any;
  /** Everything printed, results and errors. */
  text: string;
  exitCode: number;
}

export function cliRunner(register: Array<(program: Command, ctx: CliContext) => void>, app: () => Partial<App>) {
  return async function run(args: string[], json = true): Promise<CliRun> {
    const printed: string[] = [];
    const program = new Command('outreach').option('--json').exitOverride();
    const ctx: CliContext = {
      config: () => {
        throw new Error('the configuration is not used in this test');
      },
      app: async () => app() as App,
      json: () => json,
      out: (result, human) => void printed.push(json || !human ? JSON.stringify(result) : human(result)),
      progress: () => ({ update: () => undefined, stop: () => undefined }),
      close: async () => undefined,
    };
    for (const r of register) r(program, ctx);
    const errors: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
    process.exitCode = 0;
    try {
      await program.parseAsync(['node', 'outreach', ...args]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    const exitCode = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    const text = [...printed, ...errors].join('\n');
    const first = printed[0] ?? errors[0];
    let out: unknown = first;
    if (first !== undefined && json) {
      try {
        out = JSON.parse(first);
      } catch {
        out = first;
      }
    }
    return { out, text, exitCode };
  };
}
