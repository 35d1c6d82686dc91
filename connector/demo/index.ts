// `npm run demo [-- --once]`: the whole product on embedded defaults, on loopback; prints its steps and counts, serves the API, the portal and the demo inbox until Ctrl-C.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadConfig } from '../config.js';
import { asOutreachError } from '../errors.js';
import { unpackedExtensionId } from './extension-id.js';
import { runDemo, type DemoSummary } from './scenario.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const say = (line: string) => void process.stdout.write(`${line}\n`);

/** Builds the extension with the project's own build (`npm run build`), in a child process: connector code never imports extension code. */
async function buildExtension(): Promise<boolean> {
  const vite = fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url));
  if (!existsSync(vite)) return false;
  const child = spawn(process.execPath, [vite, 'build', '--config', 'extension/vite.config.ts', '--logLevel', 'warn'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code === 0;
}

async function main(): Promise<number> {
  const program = new Command()
    .name('npm run demo --')
    .description('Secure Outreach on embedded defaults: a demo EHR, two mail domains, the connector and its API, all on 127.0.0.1')
    .option('--once', 'run the scenario, print a JSON summary line and exit (0 only if every step worked)')
    .option('--patients <n>', 'generated patients in the demo EHR', '3000')
    .option('--seed <n>', 'seed of the generated population', '20261123')
    .option('--no-extension', 'do not build the browser extension')
    .option('--save-mail <dir>', 'with --once: write every message the demo mailboxes received to <dir> as .eml (as the recipients hold it; keep it out of OUTREACH_HOME)')
    .parse();
  const opts = program.opts<{ once?: boolean; patients: string; seed: string; extension: boolean; saveMail?: string }>();
  const patients = Number(opts.patients);
  const seed = Number(opts.seed);
  if (!Number.isInteger(patients) || patients < 1 || patients > 50_000) throw new Error('--patients must be 1-50000');
  if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');

  const config = loadConfig();
  say(`Secure Outreach demo: OUTREACH_HOME=${config.home}`);
  // The extension will be loaded unpacked from dist/extension: its id follows from that path, so CORS can allow it now.
  const extensionDir = join(repoRoot, 'dist', 'extension');
  let extensionOrigin: string | undefined;
  if (opts.extension && !opts.once) {
    mkdirSync(extensionDir, { recursive: true });
    extensionOrigin = `chrome-extension://${unpackedExtensionId(extensionDir)}`;
    config.extensionOrigins = [...config.extensionOrigins, extensionOrigin];
  }
  const started = Date.now();
  const demo = await runDemo({ config, patients, seed, apiPort: opts.once ? 0 : config.apiPort, say });
  const summary: DemoSummary = demo.summary;
  let exitCode = summary.ok ? 0 : 1;
  try {
    if (summary.ok && summary.urls) {
      const u = summary.urls;
      say('');
      say(`API        ${u.api}   (sign in: POST /api/v1/session with a user above)`);
      say(`OpenAPI    ${u.openApi}`);
      say(`demo inbox ${u.inbox}   (what each mailbox received and whether it came inside TLS)`);
      say(`portal     ${u.portal}…   (the links in the notices: one-time code by email, then the date of birth)`);
      say(`demo EHR   ${u.ehr}   (FHIR R4, SMART backend services, Bulk $export)`);
      say(`logs       ${config.logFile ?? join(config.home, 'logs', 'demo.log')}`);
    }
    if (opts.once) {
      if (opts.saveMail && demo.world) {
        mkdirSync(opts.saveMail, { recursive: true });
        let n = 0;
        for (const m of demo.world.mailboxes) {
          for (const msg of m.sink.messages) writeFileSync(join(opts.saveMail, `${String(++n).padStart(5, '0')}-${m.domain}-${msg.secure ? 'tls' : 'plain'}.eml`), msg.raw);
        }
        say(`saved ${n} received messages to ${opts.saveMail}`);
      }
      say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${summary.ok ? 'every step worked' : `failed at ${summary.failedStep}`}`);
      say(`DEMO-SUMMARY ${JSON.stringify(summary)}`);
      return exitCode;
    }
    if (!summary.ok) return exitCode;
    if (opts.extension) {
      say('building the browser extension (npm run build)…');
      if (await buildExtension()) {
        say(`extension  ${extensionDir}: open chrome://extensions (or edge://extensions), switch on Developer mode, "Load unpacked", pick that folder;`);
        say(`           the API already allows its origin ${extensionOrigin} (the id Chrome derives from that folder; if Chrome shows another,`);
        say(`           restart the demo with OUTREACH_EXTENSION_ORIGINS=chrome-extension://<that id>). Set the connector URL in the extension's`);
        say(`           options to ${summary.urls!.api.replace(/\/api\/v1$/, '')} and sign in as marketer or clinician.`);
      } else say('the extension did not build: run npm run build to see why');
    }
    // Campaigns scheduled from now on (API, extension) are queued and delivered to the demo mailboxes.
    demo.sending?.start();
    say('');
    say('serving until Ctrl-C (the send loop runs: campaigns scheduled through the API or the extension reach the demo inbox)');
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    say('stopping');
    return 0;
  } catch (err) {
    const e = asOutreachError(err);
    say(`FAILED: ${e.code}: ${e.message}`);
    exitCode = 1;
    return exitCode;
  } finally {
    await demo.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
