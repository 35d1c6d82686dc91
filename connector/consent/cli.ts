// `outreach consent grant|revoke|show|history|export`: the admin's view of the HIPAA authorization registry.
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { phi, reveal } from '../../fhir/phi.js';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { exportConsents } from './consent-export.js';
import type { AuthorizationDecision } from './gate.js';
import { channelList, isChannel, isPurpose, purposeList, type AuthorizationSource, type Channel, type Purpose } from './purposes.js';
import { patientKey, type AuthorizationRecord } from './registry.js';

const adminSources: readonly AuthorizationSource[] = ['admin', 'signed-form', 'crm', 'unsubscribe-link'];

function parseDate(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (!Number.isFinite(d.getTime())) throw fail('BAD_REQUEST', `${field} is not an ISO date`, { field });
  return d;
}

function parseChannel(value: string): Channel {
  if (!isChannel(value)) throw fail('BAD_REQUEST', `channel must be one of ${channelList.join(', ')}`, { field: 'channel' });
  return value;
}

function parsePurpose(value: string): Purpose {
  if (!isPurpose(value)) throw fail('BAD_REQUEST', `purpose must be one of ${purposeList.join(', ')}`, { field: 'purpose' });
  return value;
}

function parseSource(value: string): AuthorizationSource {
  if (!(adminSources as readonly string[]).includes(value)) {
    throw fail('BAD_REQUEST', `source must be one of ${adminSources.join(', ')}`, { field: 'source' });
  }
  return value as AuthorizationSource;
}

const day = (d: Date | null) => (d ? d.toISOString() : '-');

function recordLine(r: AuthorizationRecord): string {
  const purpose = r.purpose === '*' ? 'channel (all purposes)' : r.purpose;
  const status = r.purpose === '*' ? (r.status === 'revoked' ? 'opted-out' : 'opted-in') : r.status;
  return `#${r.id} ${r.recordedAt.toISOString()} ${r.channel} ${purpose.padEnd(22)} ${status.padEnd(9)} source=${r.source}${r.sourceRef ? `(${r.sourceRef})` : ''} text=${r.textVersion ?? '-'} granted=${day(r.grantedAt)} expires=${day(r.expiresAt)} by=${r.recordedBy}`;
}

export function registerConsentCommands(program: Command, ctx: CliContext): void {
  const consent = program.command('consent').description('HIPAA authorizations: grant, revoke, show, history, export (admin)');

  consent
    .command('grant')
    .description('record an authorization for a purpose, or lift a channel opt-out with --resubscribe')
    .requiredOption('--patient <id>', 'internal patient id')
    .option('--purpose <purpose>', `one of ${purposeList.join(', ')}`)
    .option('--channel <channel>', 'channel', 'email')
    .option('--source <source>', `where the authorization came from: ${adminSources.join(', ')}`, 'admin')
    .option('--ref <id>', "the source's own id (form number, CRM record id)")
    .option('--text-version <version>', 'version of the authorization text the patient signed (required for marketing)')
    .option('--granted-at <iso>', 'when the patient signed (default now)')
    .option('--expires-at <iso>', 'when the authorization ends')
    .option('--evidence-file <path>', 'the signed form or its text: sealed, and its SHA-256 kept')
    .option('--resubscribe', 'lift a channel opt-out (grants no purpose by itself)')
    .action(
      action(ctx, async (opts: Record<string, string | boolean | undefined>) => {
        const app = await ctx.app();
        const patientId = patientKey(String(opts.patient));
        const base = {
          patientId,
          channel: parseChannel(String(opts.channel)),
          source: parseSource(String(opts.source)),
          sourceRef: (opts.ref as string | undefined) ?? null,
          evidence: opts.evidenceFile ? phi(readFileSync(String(opts.evidenceFile), 'utf8')) : null,
        };
        let record: AuthorizationRecord;
        if (opts.resubscribe) {
          if (opts.purpose) throw fail('BAD_REQUEST', '--resubscribe lifts the channel opt-out; grant purposes separately', { field: 'purpose' });
          record = await app.consent.optIn(base, cliActor());
        } else {
          if (!opts.purpose) throw fail('BAD_REQUEST', '--purpose is required (or --resubscribe)', { field: 'purpose' });
          record = await app.consent.grant(
            {
              ...base,
              purpose: parsePurpose(String(opts.purpose)),
              textVersion: (opts.textVersion as string | undefined) ?? null,
              grantedAt: parseDate(opts.grantedAt as string | undefined, 'grantedAt') ?? null,
              expiresAt: parseDate(opts.expiresAt as string | undefined, 'expiresAt') ?? null,
            },
            cliActor(),
          );
        }
        ctx.out(record, recordLine);
      }),
    );

  consent
    .command('revoke')
    .description('revoke one purpose, or opt the patient out of the whole channel when no --purpose is given')
    .requiredOption('--patient <id>', 'internal patient id')
    .option('--purpose <purpose>', 'the purpose to revoke; without it every purpose on the channel stops')
    .option('--channel <channel>', 'channel', 'email')
    .option('--source <source>', `where the revocation came from: ${adminSources.join(', ')}`, 'admin')
    .option('--ref <id>', "the source's own id")
    .option('--reason <text>', 'free text, sealed')
    .action(
      action(ctx, async (opts: Record<string, string | undefined>) => {
        const app = await ctx.app();
        const base = {
          patientId: patientKey(String(opts.patient)),
          channel: parseChannel(String(opts.channel)),
          source: parseSource(String(opts.source)),
          sourceRef: opts.ref ?? null,
          reason: opts.reason ? phi(opts.reason) : null,
        };
        const record = opts.purpose
          ? await app.consent.revoke({ ...base, purpose: parsePurpose(opts.purpose) }, cliActor())
          : await app.consent.optOut(base, cliActor());
        ctx.out(record, recordLine);
      }),
    );

  consent
    .command('show')
    .description('the current authorization rows of a patient and the gate decision for every purpose')
    .requiredOption('--patient <id>', 'internal patient id')
    .option('--channel <channel>', 'channel', 'email')
    .option('--at <iso>', 'decide at this time (default now)')
    .action(
      action(ctx, async (opts: Record<string, string | undefined>) => {
        const app = await ctx.app();
        const patientId = patientKey(String(opts.patient));
        const channel = parseChannel(String(opts.channel));
        const at = parseDate(opts.at, 'at') ?? new Date();
        const current = (await app.consent.current(patientId)).filter((r) => r.channel === channel);
        const decisions: Record<string, AuthorizationDecision> = {};
        for (const purpose of purposeList) decisions[purpose] = await app.consent.isAllowed(patientId, purpose, channel, at);
        const actor = cliActor();
        await app.audit.append({ actor: actor.name, role: actor.role, action: 'consent.show', purpose: 'administration', patientId });
        ctx.out({ patientId, channel, at: at.toISOString(), current, decisions }, (r: { patientId: string; channel: string; at: string; current: AuthorizationRecord[]; decisions: Record<string, AuthorizationDecision> }) =>
          [
            `patient ${r.patientId} · ${r.channel} · at ${r.at}`,
            ...Object.entries(r.decisions).map(
              ([p, d]) => `  ${p.padEnd(22)} ${d.allowed ? 'allowed' : 'DENIED '} ${d.reason}${d.consentVersion ? ` (text ${d.consentVersion})` : ''}`,
            ),
            'current rows:',
            ...(r.current.length ? r.current.map((c) => '  ' + recordLine(c)) : ['  (none)']),
          ].join('\n'),
        );
      }),
    );

  consent
    .command('history')
    .description('every authorization row of a patient, oldest first')
    .requiredOption('--patient <id>', 'internal patient id')
    .option('--evidence', 'also open the sealed evidence and reasons (a PHI read, audited)')
    .action(
      action(ctx, async (opts: Record<string, string | boolean | undefined>) => {
        const app = await ctx.app();
        const patientId = patientKey(String(opts.patient));
        const rows = await app.consent.history(patientId);
        const actor = cliActor();
        const withEvidence: Array<AuthorizationRecord & { evidence?: string; reason?: string }> = [];
        for (const r of rows) {
          const evidence = opts.evidence ? await app.consent.openEvidence(r) : undefined;
          const reason = opts.evidence ? await app.consent.openReason(r) : undefined;
          withEvidence.push({ ...r, ...(evidence ? { evidence: reveal(evidence) } : {}), ...(reason ? { reason: reveal(reason) } : {}) });
        }
        await app.audit.append({
          actor: actor.name,
          role: actor.role,
          action: opts.evidence ? 'consent.evidence-read' : 'consent.history',
          purpose: 'administration',
          patientId,
        });
        ctx.out(withEvidence, (list: typeof withEvidence) =>
          list.length
            ? list
                .map((r) => [recordLine(r), ...(r.evidence ? [`    evidence: ${r.evidence}`] : []), ...(r.reason ? [`    reason: ${r.reason}`] : [])].join('\n'))
                .join('\n')
            : '(no authorization rows)',
        );
      }),
    );

  consent
    .command('export')
    .description('the registry as NDJSON of FHIR Consent (current rows, or --history for every row)')
    .option('--out <file>', 'write NDJSON here (created 0600) instead of stdout')
    .option('--history', 'every row ever recorded')
    .action(
      action(ctx, async (opts: { out?: string; history?: boolean }) => {
        const app = await ctx.app();
        const actor = cliActor();
        let count = 0;
        if (opts.out) {
          const file = createWriteStream(opts.out, { mode: 0o600, flags: 'w' });
          for await (const line of exportConsents(app.consent, { history: Boolean(opts.history) })) {
            if (!file.write(line + '\n')) await once(file, 'drain');
            count += 1;
          }
          file.end();
          await once(file, 'finish');
        } else {
          const lines: string[] = [];
          for await (const line of exportConsents(app.consent, { history: Boolean(opts.history) })) lines.push(line);
          count = lines.length;
          ctx.out(lines.map((l) => JSON.parse(l) as unknown), () => lines.join('\n'));
        }
        await app.audit.append({ actor: actor.name, role: actor.role, action: 'consent.export', purpose: 'administration', entity: `consent-export/${count}` });
        if (opts.out) ctx.out({ file: opts.out, consents: count }, (r: { file: string; consents: number }) => `${r.consents} Consent resources written to ${r.file}`);
      }),
    );
}
