// `outreach segment count|explain|preview|save|list|export`: segments from the command line, definitions from a file or inline JSON.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { parseSegmentDefinition } from './definition.js';
import { definitionHash } from './definition-hash.js';
import type { ExplainStep } from './segment-evaluator.js';
import { ContactLinks } from '../salesforce/contact-links.js';
import { segmentToCrmIds, segmentToFhirGroup, type PatientIdResolver } from './segment-export.js';
import { SegmentRepository } from './segment-repository.js';
import { SegmentService } from './segment-service.js';

/** A definition argument: inline JSON (starts with `{`) or the path of a JSON file. */
export function readDefinitionArgument(arg: string): unknown {
  const text = arg.trim().startsWith('{') ? arg : readDefinitionFile(arg);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw fail('SEGMENT_INVALID', 'segment definition is not valid JSON', { field: 'definition' });
  }
}

function readDefinitionFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw fail('NOT_FOUND', 'segment definition file not found or unreadable', { field: 'definition' });
  }
}

/** The segment service over the app's live index, saved segments and audit log. */
export function segmentServiceOf(app: App): SegmentService {
  return new SegmentService({
    index: async () => (await app.segmentIndex()).index,
    repository: new SegmentRepository(app.db),
    audit: (entries) => app.audit.append(entries),
  });
}

/** Internal ids -> source Patient ids, read from the sealed facts (the store keeps only a blind index of them). */
function sourcePatientIds(app: App): PatientIdResolver {
  return async (ids) => {
    const facts = await app.facts.readFacts(ids);
    return new Map([...facts].map(([id, f]) => [id, f.patientId]));
  };
}

const n = (x: number) => x.toLocaleString('en-US');

function explainText(r: { steps: ExplainStep[]; total: number; asOf: string }): string {
  const lines = r.steps.map((s) => {
    const label = `${'  '.repeat(s.depth)}${s.description}`;
    const running = s.cumulative !== s.count ? `  (running ${n(s.cumulative)})` : '';
    return `${label.padEnd(60)} ${n(s.count).padStart(12)}${running}`;
  });
  return [`as of ${r.asOf}, ${n(r.total)} patients in the index`, ...lines].join('\n');
}

export function registerSegmentCommands(program: Command, ctx: CliContext): void {
  const segment = program.command('segment').description('segments over the encrypted patient facts: count, explain, preview, save, list, export');

  segment
    .command('count')
    .description('count the patients a definition selects')
    .argument('<definition>', 'inline JSON or a JSON file')
    .option('--as-of <date>', 'evaluation day YYYY-MM-DD (default today)')
    .action(
      action(ctx, async (definition: string, opts: { asOf?: string }) => {
        const r = await segmentServiceOf(await ctx.app()).count(readDefinitionArgument(definition), opts);
        ctx.out(r, () => `${n(r.count)} of ${n(r.total)} patients (as of ${r.asOf}) in ${r.elapsedMs.toFixed(1)} ms · definition ${r.definitionHash.slice(0, 12)}`);
      }),
    );

  segment
    .command('explain')
    .description('the count after each part of a definition, in tree order')
    .argument('<definition>', 'inline JSON or a JSON file')
    .option('--as-of <date>', 'evaluation day YYYY-MM-DD (default today)')
    .action(
      action(ctx, async (definition: string, opts: { asOf?: string }) => {
        const r = await segmentServiceOf(await ctx.app()).explain(readDefinitionArgument(definition), opts);
        ctx.out(r, explainText);
      }),
    );

  segment
    .command('preview')
    .description('a few members, masked (initials, age band); every patient shown is audited')
    .argument('<definition>', 'inline JSON or a JSON file')
    .option('--limit <n>', 'members to show (1-20)', '5')
    .option('--as-of <date>', 'evaluation day YYYY-MM-DD (default today)')
    .action(
      action(ctx, async (definition: string, opts: { limit: string; asOf?: string }) => {
        const actor = cliActor();
        const r = await segmentServiceOf(await ctx.app()).preview(readDefinitionArgument(definition), {
          actor: actor.name,
          role: actor.role,
          limit: Number(opts.limit),
          ...(opts.asOf ? { asOf: opts.asOf } : {}),
        });
        ctx.out(r, () =>
          [`${n(r.count)} patients (as of ${r.asOf}); first ${r.members.length}:`, ...r.members.map((m) => `  #${m.id} ${m.initials} ${m.gender} ${m.ageBand}${m.state ? ` ${m.state}` : ''}`)].join('\n'),
        );
      }),
    );

  segment
    .command('save')
    .description('save a definition under a name (a new version when it changed)')
    .argument('<name>', 'segment name')
    .argument('<definition>', 'inline JSON or a JSON file')
    .option('--description <text>', 'what the segment is for (no patient data)')
    .action(
      action(ctx, async (name: string, definition: string, opts: { description?: string }) => {
        const app = await ctx.app();
        const saved = await new SegmentRepository(app.db).save({
          name,
          definition: readDefinitionArgument(definition),
          actor: cliActor().name,
          ...(opts.description ? { description: opts.description } : {}),
        });
        ctx.out(saved, (s: typeof saved) =>
          `${s.created ? 'saved' : 'unchanged:'} ${s.name} v${s.version} (version id ${s.versionId}) sha256 ${s.definitionHash}`,
        );
      }),
    );

  segment
    .command('list')
    .description('saved segments with their latest version')
    .action(
      action(ctx, async () => {
        const list = await new SegmentRepository((await ctx.app()).db).list();
        ctx.out(list, () =>
          list.length === 0
            ? 'no saved segments'
            : list.map((s) => `${s.name.padEnd(32)} v${s.latestVersion} (version id ${s.latestVersionId}) ${s.definitionHash.slice(0, 12)} by ${s.createdBy}`).join('\n'),
        );
      }),
    );

  segment
    .command('export')
    .description('a saved segment as a FHIR Group (Patient references by source id), CRM record ids, or internal ids')
    .argument('<name>', 'saved segment name')
    .option('--version <n>', 'segment version (default latest)')
    .option('--format <format>', 'group | crm | ids', 'group')
    .option('--as-of <date>', 'evaluation day YYYY-MM-DD (default today)')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(
      action(ctx, async (name: string, opts: { version?: string; format: string; asOf?: string; out?: string }) => {
        if (!['group', 'crm', 'ids'].includes(opts.format)) throw fail('BAD_REQUEST', 'format must be group, crm or ids', { field: 'format' });
        const app = await ctx.app();
        const service = segmentServiceOf(app);
        const version = opts.version === undefined ? undefined : Number(opts.version);
        if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw fail('BAD_REQUEST', 'version must be a positive integer', { field: 'version' });
        const saved = await service.get(name, version);
        const definition = parseSegmentDefinition(saved.definition);
        const memberIds = await service.allMembers(definition, opts.asOf ? { asOf: opts.asOf } : {});
        const actor = cliActor();
        // An export discloses membership: every exported patient is audited, in batches.
        for (let i = 0; i < memberIds.length; i += 1000) {
          await app.audit.append(
            memberIds.slice(i, i + 1000).map((patientId) => ({
              actor: actor.name,
              role: actor.role,
              action: 'segment.export',
              purpose: 'operations',
              patientId,
              entity: `segment/${saved.segmentId}`,
              outcome: 'success' as const,
            })),
          );
        }
        let result: unknown;
        if (opts.format === 'group') {
          result = await segmentToFhirGroup({
            memberIds,
            name: saved.name,
            version: saved.version,
            definitionHash: definitionHash(definition),
            resolvePatientIds: sourcePatientIds(app),
          });
        } else if (opts.format === 'crm') {
          // Salesforce Contact ids of the linked members (`outreach salesforce link-contacts`); unlinked ones are counted.
          const links = new ContactLinks(app.db, app.cipher);
          result = await segmentToCrmIds(memberIds, (ids) => links.contactsOf(ids));
        } else {
          result = { ids: memberIds };
        }
        const text = JSON.stringify(result, null, 2);
        if (opts.out) {
          writeFileSync(opts.out, text + '\n', { mode: 0o600 });
          ctx.out({ file: opts.out, members: memberIds.length }, () => `${n(memberIds.length)} members written to ${opts.out}`);
        } else {
          ctx.out(result, () => text);
        }
      }),
    );
}
