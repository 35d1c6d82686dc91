// `outreach audit verify|export`: check the hash chain, and write the log as FHIR AuditEvent NDJSON.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { toAuditEvent } from './audit-event.js';
import type { AuditSearch } from './audit-log.js';

function parseDate(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (!Number.isFinite(d.getTime())) throw fail('BAD_REQUEST', `${field} is not an ISO date`, { field });
  return d;
}

export function registerAuditCommands(program: Command, ctx: CliContext): void {
  const audit = program.command('audit').description('the hash-chained audit log (admin)');

  audit
    .command('verify')
    .description('walk the hash chain and its head; names the first changed, missing, reordered or re-hashed row')
    .action(
      action(ctx, async () => {
        const app = await ctx.app();
        const result = await app.audit.verify();
        const actor = cliActor();
        if (!result.ok) {
          await app.audit.append({ actor: actor.name, role: actor.role, action: 'audit.verify', purpose: 'administration', outcome: 'failure' });
          throw fail('AUDIT_CHAIN_BROKEN', `first bad row ${result.firstBadSeq}: ${result.message}`, {
            seq: result.firstBadSeq,
            problem: result.problem,
          });
        }
        await app.audit.append({ actor: actor.name, role: actor.role, action: 'audit.verify', purpose: 'administration' });
        ctx.out(result, (r: typeof result) => `audit chain intact: ${r.rows} rows, head ${r.head.seq} ${r.head.hash}`);
      }),
    );

  audit
    .command('export')
    .description('FHIR AuditEvent NDJSON: an accounting of PHI access and disclosures')
    .option('--out <file>', 'write NDJSON here (created 0600) instead of stdout')
    .option('--patient <id>', 'only rows about this internal patient id')
    .option('--since <iso>', 'rows at or after this time')
    .option('--until <iso>', 'rows before this time')
    .option('--action <prefix>', 'only actions starting with this (e.g. campaign.)')
    .action(
      action(ctx, async (opts: { out?: string; patient?: string; since?: string; until?: string; action?: string }) => {
        const app = await ctx.app();
        const filter: AuditSearch = {
          ...(opts.patient ? { patientId: opts.patient } : {}),
          ...(opts.since ? { since: parseDate(opts.since, 'since')! } : {}),
          ...(opts.until ? { until: parseDate(opts.until, 'until')! } : {}),
          ...(opts.action ? { actionPrefix: opts.action } : {}),
        };
        let count = 0;
        const lines: string[] = [];
        const file = opts.out ? createWriteStream(opts.out, { mode: 0o600, flags: 'w' }) : undefined;
        for await (const row of app.audit.search(filter)) {
          const line = JSON.stringify(toAuditEvent(row));
          count += 1;
          if (!file) lines.push(line);
          else if (!file.write(line + '\n')) await once(file, 'drain');
        }
        if (file) {
          file.end();
          await once(file, 'finish');
        }
        const actor = cliActor();
        await app.audit.append({
          actor: actor.name,
          role: actor.role,
          action: 'audit.export',
          purpose: 'administration',
          patientId: opts.patient ?? null,
          entity: `audit-export/${count}`,
        });
        if (file) ctx.out({ file: opts.out, events: count }, (r: { file: string; events: number }) => `${r.events} AuditEvent resources written to ${r.file}`);
        else ctx.out(lines.map((l) => JSON.parse(l) as unknown), () => lines.join('\n'));
      }),
    );
}
