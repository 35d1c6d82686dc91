// `outreach keys ...`: key status, rotation with background reseal, retirement of old versions, master key re-wrap.
import { existsSync, renameSync, unlinkSync } from 'node:fs';
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import type { App } from '../app.js';
import { generateMasterKey, localKmsProvider, masterKeyPath, writeKeyFile } from '../store/master-key.js';
import { countStale, queueResealIfStale, resealStatus, type ResealJobStatus } from '../store/reseal-job.js';

interface KeyStatus {
  masterKey: { source: 'env' | 'file' | 'kms'; kekId: string };
  currentVersion: number;
  versions: Array<{ purpose: string; version: number; current: boolean; createdAt: string; retiredAt?: string; kekId: string; rows: number }>;
  jobs: ResealJobStatus[];
}

async function keyStatus(app: App): Promise<KeyStatus> {
  await app.keyring.refresh();
  const usage = await app.keyring.usage();
  const source = app.config.masterKey ? 'env' : app.keyring.kekId.startsWith('local:') ? 'file' : 'kms';
  return {
    masterKey: { source, kekId: app.keyring.kekId },
    currentVersion: app.keyring.currentVersion,
    versions: app.keyring.keys().map((k) => ({
      ...k,
      rows: k.purpose === 'seal' ? usage.filter((u) => u.version === k.version).reduce((n, u) => n + u.rows, 0) : 0,
    })),
    jobs: await resealStatus(app.db, app.keyring),
  };
}

function showStatus(s: KeyStatus): string {
  const lines = [`master key: ${s.masterKey.source} (${s.masterKey.kekId})`, `current seal key: v${s.currentVersion}`, 'versions:'];
  for (const v of s.versions) {
    const state = v.retiredAt ? `retired ${v.retiredAt}` : v.current ? 'current' : 'live';
    lines.push(`  ${v.purpose} v${v.version}  ${state}  created ${v.createdAt}${v.purpose === 'seal' ? `  ${v.rows} sealed values` : ''}`);
  }
  if (s.jobs.length === 0) lines.push('reseal jobs: none');
  for (const j of s.jobs) {
    const remaining = j.columns.reduce((n, c) => n + c.remaining, 0);
    lines.push(`reseal job ${j.id} -> v${j.targetVersion}: ${j.state}, ${j.resealed} resealed${j.state === 'running' ? `, ${remaining} to go` : ''}`);
    for (const c of j.columns) lines.push(`  ${c.table}.${c.column}: ${c.resealed} resealed${c.done ? ', done' : `, ${c.remaining} to go`}`);
  }
  return lines.join('\n');
}

/** Runs the background worker in the foreground until the open jobs finish, with a progress bar. */
async function resealNow(ctx: CliContext, app: App): Promise<number> {
  let total = 0;
  for (const c of await app.keyring.sealedColumns()) {
    const exists = await app.db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [c.table]);
    if (exists[0]?.t) total += await countStale(app.db, c, app.keyring.currentVersion);
  }
  const bar = ctx.progress('resealing', total);
  let done = 0;
  const off = app.reseal.onBatch((p) => bar.update((done += p.resealed)));
  try {
    await app.reseal.kick();
    await app.reseal.whenIdle();
  } finally {
    off();
    bar.stop();
  }
  return done;
}

export function registerKeyCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('data keys: status, rotation, reseal, retirement, master key re-wrap (admin)');

  keys
    .command('status')
    .description('key versions, sealed values per version and reseal progress')
    .action(action(ctx, async () => ctx.out(await keyStatus(await ctx.app()), showStatus)));

  keys
    .command('rotate')
    .description('create a new seal key version and reseal every value under it (resumable, batched)')
    .option('--no-wait', 'queue the reseal for the running server instead of doing it now')
    .action(
      action(ctx, async (opts: { wait: boolean }) => {
        const app = await ctx.app();
        const { version, jobId } = await app.keyring.rotate();
        const resealed = opts.wait ? await resealNow(ctx, app) : 0;
        const result = { version, jobId, resealed, state: opts.wait ? 'done' : 'queued' };
        ctx.out(result, (r: typeof result) =>
          opts.wait ? `seal key v${r.version} is current; ${r.resealed} values resealed (job ${r.jobId})` : `seal key v${r.version} is current; reseal job ${r.jobId} queued`,
        );
      }),
    );

  keys
    .command('reseal')
    .description('run the open reseal jobs to the end (resumes where a previous run stopped; queues one for values still under old keys)')
    .action(
      action(ctx, async () => {
        const app = await ctx.app();
        await queueResealIfStale(app.db, app.keyring);
        const resealed = await resealNow(ctx, app);
        ctx.out({ resealed }, (r: { resealed: number }) => `${r.resealed} values resealed`);
      }),
    );

  keys
    .command('retire <version>')
    .description('delete an old seal key once no value uses it (crypto-shred)')
    .action(
      action(ctx, async (version: string) => {
        const v = Number(version);
        if (!Number.isInteger(v) || v < 1) throw fail('BAD_REQUEST', 'version must be a positive integer', { field: 'version' });
        const app = await ctx.app();
        await app.keyring.retire(v);
        ctx.out({ retired: v }, () => `seal key v${v} retired`);
      }),
    );

  keys
    .command('rewrap-master')
    .description('wrap the data keys under a new master key (sealed values are untouched)')
    .option('--out <file>', 'with OUTREACH_MASTER_KEY: write the new key here (0600), then put it in OUTREACH_MASTER_KEY')
    .action(
      action(ctx, async (opts: { out?: string }) => {
        const config = ctx.config();
        if (config.masterKey && !opts.out) throw fail('BAD_REQUEST', 'the master key comes from OUTREACH_MASTER_KEY: give --out <file> for the new key', { field: 'out' });
        if (opts.out && existsSync(opts.out)) throw fail('CONFLICT', '--out names an existing file; it is never overwritten');
        const app = await ctx.app();
        if (!app.keyring.kekId.startsWith('local:')) throw fail('CONFLICT', 'the data keys are wrapped by an external KMS: rotate the key there');
        const key = generateMasterKey();
        // Stage the new key first: a crash after the commit is finished at the next start (the staged file is adopted).
        const file = opts.out ?? masterKeyPath(config.home);
        const staged = opts.out ?? `${file}.next`;
        // The app opened with the current key, so a leftover staged key is from a re-wrap that never committed.
        writeKeyFile(staged, key, opts.out ? 'wx' : 'w');
        const next = localKmsProvider(key);
        let rewrapped: number;
        try {
          ({ rewrapped } = await app.keyring.rewrapMaster(next));
        } catch (err) {
          unlinkSync(staged);
          throw err;
        }
        if (!opts.out) {
          try {
            renameSync(staged, file);
          } catch {
            // The data keys are now wrapped under `key`: it must reach the key file whatever happened to the staged copy.
            writeKeyFile(file, key, 'w');
          }
        }
        const result = { rewrapped, kekId: next.id, keyFile: file };
        ctx.out(result, (r: typeof result) =>
          `${r.rewrapped} data keys re-wrapped under ${r.kekId}; the new key is in ${opts.out ? `${r.keyFile} (set OUTREACH_MASTER_KEY from it)` : r.keyFile}`,
        );
      }),
    );
}
