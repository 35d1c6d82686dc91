// `outreach template create|update|show|list|scan`: versioned templates and their PHI analysis from the command line.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { scanText, type Finding } from './phi-scanner.js';
import { analyzeTemplate, parseTemplate, type TemplateAnalysis, type TemplateContent } from './template.js';
import { TemplateStore, type TemplateSummary, type TemplateVersion } from './template-store.js';

interface ContentOptions {
  file?: string;
  subject?: string;
  preheader?: string;
  html?: string;
  htmlFile?: string;
  text?: string;
  textFile?: string;
  fromName?: string;
  description?: string;
}

const contentKeys = ['subject', 'preheader', 'html', 'text', 'fromName'] as const;

function readText(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fail('BAD_REQUEST', `cannot read the ${field} file (${(err as { code?: string }).code ?? 'error'})`, { field });
  }
}

/** The fields given on the command line: a JSON file first, then single options over it. */
function contentFrom(opts: ContentOptions): Partial<TemplateContent> {
  const out: Partial<TemplateContent> = {};
  if (opts.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readText(opts.file, 'file'));
    } catch (err) {
      if ((err as { code?: string }).code === 'BAD_REQUEST') throw err;
      throw fail('BAD_REQUEST', 'the template file is not valid JSON', { field: 'file' });
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw fail('BAD_REQUEST', 'the template file must hold a JSON object', { field: 'file' });
    for (const key of Object.keys(parsed)) {
      if (!(contentKeys as readonly string[]).includes(key)) throw fail('BAD_REQUEST', `unknown template field ${JSON.stringify(key).slice(0, 40)}`, { field: 'file' });
      const value = (parsed as Record<string, unknown>)[key];
      if (typeof value !== 'string') throw fail('TEMPLATE_INVALID', `${key} must be text`, { field: key });
      out[key as keyof TemplateContent] = value;
    }
  }
  if (opts.subject !== undefined) out.subject = opts.subject;
  if (opts.preheader !== undefined) out.preheader = opts.preheader;
  if (opts.html !== undefined) out.html = opts.html;
  if (opts.htmlFile) out.html = readText(opts.htmlFile, 'html');
  if (opts.text !== undefined) out.text = opts.text;
  if (opts.textFile) out.text = readText(opts.textFile, 'text');
  if (opts.fromName !== undefined) out.fromName = opts.fromName;
  return out;
}

function complete(content: Partial<TemplateContent>): TemplateContent {
  for (const key of ['subject', 'text'] as const) {
    if (content[key] === undefined) throw fail('TEMPLATE_INVALID', `${key} is missing`, { field: key });
  }
  return { subject: content.subject!, preheader: content.preheader ?? '', html: content.html ?? '', text: content.text!, ...(content.fromName !== undefined ? { fromName: content.fromName } : {}) };
}

const contentOptions = (cmd: Command): Command =>
  cmd
    .option('--file <json>', 'a JSON file with subject, preheader, html, text and fromName')
    .option('--subject <text>', 'the subject line')
    .option('--preheader <text>', 'the inbox preview text')
    .option('--html <html>', 'the HTML part')
    .option('--html-file <path>', 'read the HTML part from a file')
    .option('--text <text>', 'the plain-text part')
    .option('--text-file <path>', 'read the plain-text part from a file')
    .option('--from-name <name>', "'pcp' (the patient's primary care provider) or a display name");

const findingLine = (f: Finding & { field?: string; line?: number; column?: number }) =>
  `  ${f.field ? `${f.field} ${f.line}:${f.column}` : `${f.start}-${f.end}`}  ${f.kind} (${f.severity}, ${f.rule})`;

function analysisText(a: TemplateAnalysis): string {
  const lines = [
    `PHI class: ${a.phiClass}${a.phiFree ? ' (PHI-free: may travel without verified TLS)' : ''}`,
    `delivery modes allowed: ${a.deliveryModes.join(', ')}`,
    `merge tags: ${a.tags.length ? a.tags.map((t) => `[${t.name}] ${t.phiClass} in ${t.field} ${t.line}:${t.column}`).join('; ') : 'none'}`,
    `findings: ${a.findings.length}`,
    ...a.findings.map(findingLine),
  ];
  if (a.blocked.length) {
    lines.push(`BLOCKED: ${a.blocked.map((b) => `${b.field} ${b.line}:${b.column} ${b.reason === 'phi-tag' ? `[${b.tag}]` : b.kind}`).join('; ')}`);
  }
  return lines.join('\n');
}

const versionLine = (v: TemplateVersion) =>
  `${v.name} v${v.version} (id ${v.versionId}) ${v.phiClass} sha256:${v.contentHash.slice(0, 16)} by ${v.createdBy} at ${v.createdAt}`;

export function registerTemplateCommands(program: Command, ctx: CliContext): void {
  const template = program.command('template').description('email templates: versioned content with merge tags and a PHI scan');
  const store = async () => new TemplateStore((await ctx.app()).db);

  contentOptions(template.command('create').description('save a new template (version 1)').argument('<name>', 'template name'))
    .option('--description <text>', 'what the template is for')
    .action(
      action(ctx, async (name: string, opts: ContentOptions) => {
        const content = complete(contentFrom(opts));
        const saved = await (await store()).create({ name, content, ...(opts.description ? { description: opts.description } : {}), actor: cliActor().name });
        ctx.out(saved, (v: TemplateVersion) => `created ${versionLine(v)}`);
      }),
    );

  contentOptions(template.command('update').description('save a new version with the given fields changed').argument('<name>', 'template name'))
    .option('--no-from-name', 'remove the From name (use the sender name)')
    .action(
      action(ctx, async (name: string, opts: Omit<ContentOptions, 'fromName'> & { fromName?: string | false }) => {
        const { fromName, ...rest } = opts;
        const content: Parameters<TemplateStore['update']>[0]['content'] = contentFrom({ ...rest, ...(typeof fromName === 'string' ? { fromName } : {}) });
        if (fromName === false) content.fromName = null;
        if (!Object.keys(content).length) throw fail('BAD_REQUEST', 'nothing to update: give --file or a field option', { field: 'content' });
        const saved = await (await store()).update({ name, content, actor: cliActor().name });
        ctx.out(saved, (v: TemplateVersion & { created: boolean }) => (v.created ? `saved ${versionLine(v)}` : `unchanged: ${versionLine(v)}`));
      }),
    );

  template
    .command('show')
    .description('a template version: content, hash and PHI analysis')
    .argument('<name>', 'template name')
    .option('--version <n>', 'a version number (default: the latest)', (v) => Number.parseInt(v, 10))
    .option('--versions', 'list every version instead')
    .action(
      action(ctx, async (name: string, opts: { version?: number; versions?: boolean }) => {
        const s = await store();
        if (opts.versions) {
          const list = await s.versions(name);
          ctx.out(list, (l: TemplateVersion[]) => l.map(versionLine).join('\n'));
          return;
        }
        const v = await s.get(name, opts.version);
        const analysis = analyzeTemplate(v.content);
        ctx.out({ ...v, analysis }, (r: TemplateVersion & { analysis: TemplateAnalysis }) =>
          [
            versionLine(r),
            `subject:   ${r.content.subject}`,
            `preheader: ${r.content.preheader}`,
            `from name: ${r.content.fromName ?? '(sender name)'}`,
            '--- text',
            r.content.text,
            '--- html',
            r.content.html || '(none)',
            '---',
            analysisText(r.analysis),
          ].join('\n'),
        );
      }),
    );

  template
    .command('list')
    .description('every template with its latest version')
    .action(
      action(ctx, async () => {
        const list = await (await store()).list();
        ctx.out(list, (l: TemplateSummary[]) =>
          l.length
            ? l.map((t) => `${t.name.padEnd(32)} v${t.latestVersion} ${t.phiClass.padEnd(8)} ${t.mergeTags.map((n) => `[${n}]`).join(' ')}`).join('\n')
            : '(no templates)',
        );
      }),
    );

  contentOptions(
    template
      .command('scan')
      .description('the PHI analysis of a saved template, of a template file, or of free text (--input); nothing is saved')
      .argument('[name]', 'a saved template'),
  )
    .option('--version <n>', 'a version of the saved template', (v) => Number.parseInt(v, 10))
    .option('--input <text>', 'free text to scan (findings are printed as positions, never as text)')
    .action(
      action(ctx, async (name: string | undefined, opts: ContentOptions & { version?: number; input?: string }) => {
        if (opts.input !== undefined) {
          const findings = scanText(opts.input);
          ctx.out({ findings }, (r: { findings: Finding[] }) => `findings: ${r.findings.length}\n${r.findings.map(findingLine).join('\n')}`.trimEnd());
          return;
        }
        const content = name ? (await (await store()).get(name, opts.version)).content : complete(contentFrom(opts));
        const analysis = analyzeTemplate(parseTemplate(content));
        ctx.out(analysis, analysisText);
        if (analysis.blocked.length) process.exitCode = 2;
      }),
    );
}
