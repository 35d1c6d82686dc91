// `outreach journey create|edit|approve|pause|resume|status|list|run`: automated journeys from the command line, as a signed-in user; `run` is the scheduler.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { App } from '../app.js';
import { action, type CliContext } from '../cli-context.js';
import { asCliUser, stdinUserIo, type CliUserIo } from '../cli-sign-in.js';
import { TemplateStore } from '../compose/template-store.js';
import { purposeList } from '../consent/purposes.js';
import { deliveryModes, type DeliveryMode } from '../delivery/tls-policy.js';
import { fail } from '../errors.js';
import type { Session } from '../users/authorize.js';
import type { TickReport } from './journey-engine.js';
import type { Journey, JourneyCounts, JourneyInput } from './journey-service.js';
import { openJourneys, type Journeys } from './open-journeys.js';
import { startJourneyScheduler } from './scheduler.js';

/** What the journey commands read from the operator: the `--user` password and Ctrl-C. */
export type JourneyCliIo = CliUserIo;

interface DefinitionOptions {
  definition?: string;
  trigger?: string;
  steps?: string;
  purpose?: string;
  mode?: string;
  user: string;
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw fail('BAD_REQUEST', `--${field} is not valid JSON`, { field });
  }
}

/** Trigger and steps from `--definition <file>` ({ trigger, steps }) or `--trigger` / `--steps` JSON; a send step may name its template by `template` (latest version). */
async function definitionOf(app: App, o: DefinitionOptions): Promise<{ trigger?: unknown; steps?: unknown }> {
  const file = o.definition ? (parseJson(readFileSync(o.definition, 'utf8'), 'definition') as { trigger?: unknown; steps?: unknown }) : {};
  const trigger = o.trigger ? parseJson(o.trigger, 'trigger') : file.trigger;
  let steps = o.steps ? parseJson(o.steps, 'steps') : file.steps;
  if (Array.isArray(steps)) {
    const templates = new TemplateStore(app.db);
    steps = await Promise.all(
      steps.map(async (s: Record<string, unknown>) => {
        if (!s || s.kind !== 'send' || typeof s.template !== 'string') return s;
        const { template, ...rest } = s;
        return { ...rest, templateVersionId: (await templates.get(template as string)).versionId };
      }),
    );
  }
  return { ...(trigger !== undefined ? { trigger } : {}), ...(steps !== undefined ? { steps } : {}) };
}

function modeOf(mode: string | undefined): DeliveryMode | undefined {
  if (mode === undefined) return undefined;
  if (!(deliveryModes as readonly string[]).includes(mode)) throw fail('BAD_REQUEST', `delivery mode must be one of ${deliveryModes.join(', ')}`, { field: 'mode' });
  return mode as DeliveryMode;
}

export function journeyLine(j: Journey): string {
  const steps = j.steps.map((s) => `${s.name}(${s.kind})`).join(' > ');
  return `#${j.id} ${j.name} · ${j.status} · v${j.revision} · ${j.purpose} · ${j.deliveryMode} · ${j.trigger.kind} · ${steps}${j.approvedBy ? ` · approved by ${j.approvedBy}` : ''}`;
}

function countsText(c: JourneyCounts): string {
  const exited = Object.entries(c.enrollments.exited).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return [
    journeyLine(c.journey),
    `enrolled: waiting ${c.enrollments.waiting} · done ${c.enrollments.done} · exited ${exited}`,
    ...c.steps.map((s) => `  ${s.index + 1}. ${s.name} (${s.kind}): waiting ${s.waiting}${Object.entries(s.outcomes).map(([k, v]) => ` · ${k} ${v}`).join('')}`),
  ].join('\n');
}

const userOption = (cmd: Command): Command => cmd.requiredOption('--user <name>', 'act as this user (the password is read from stdin)');
const definitionOptions = (cmd: Command): Command =>
  cmd
    .option('--definition <file>', 'a JSON file with { "trigger": ..., "steps": [...] }')
    .option('--trigger <json>', 'the trigger, e.g. {"kind":"appointment-booked","hoursBefore":24}')
    .option('--steps <json>', 'the steps, e.g. [{"kind":"send","name":"reminder","template":"Appointment reminder"}]')
    .option('--purpose <purpose>', purposeList.join(' | '))
    .option('--mode <mode>', `${deliveryModes.join(' | ')} (default tls-or-escrow)`);

export function registerJourneyCommands(program: Command, ctx: CliContext, io: JourneyCliIo = stdinUserIo): void {
  /** Signs in as `--user` (audited like any sign-in), runs `fn` with the session, signs out. */
  const asUser = <T>(user: string, fn: (j: Journeys, session: Session, app: App) => Promise<T>): Promise<T> =>
    asCliUser(ctx, io, user, async (session, app) => {
      const journeys = await openJourneys(app, { listen: false });
      try {
        return await fn(journeys, session, app);
      } finally {
        journeys.close();
      }
    });
  const show = (j: Journey) => ctx.out(j, journeyLine);

  const journey = program.command('journey').description('automated journeys: reminders started by EHR changes (appointments, refills, screenings, follow-ups, segment entry)');

  userOption(definitionOptions(journey.command('create').description('a draft journey (a clinician approves it before it runs)').argument('<name>', 'journey name'))).action(
    action(ctx, async (name: string, o: DefinitionOptions) => {
      if (!o.purpose) throw fail('BAD_REQUEST', `--purpose must be one of ${purposeList.join(', ')}`, { field: 'purpose' });
      const mode = modeOf(o.mode);
      show(
        await asUser(o.user, async (j, session, app) => {
          const d = await definitionOf(app, o);
          const input: JourneyInput = { name, purpose: o.purpose!, trigger: d.trigger, steps: d.steps, ...(mode ? { deliveryMode: mode } : {}) };
          return j.service.create(session, input);
        }),
      );
    }),
  );

  userOption(definitionOptions(journey.command('edit').description('change a journey: a new version, its approval void until approved again').argument('<id>', 'journey id')))
    .option('--name <name>', 'a new name')
    .action(
      action(ctx, async (id: string, o: DefinitionOptions & { name?: string }) => {
        const mode = modeOf(o.mode);
        show(
          await asUser(o.user, async (j, session, app) => {
            const d = await definitionOf(app, o);
            const patch: Partial<JourneyInput> = { ...d, ...(o.name ? { name: o.name } : {}), ...(o.purpose ? { purpose: o.purpose } : {}), ...(mode ? { deliveryMode: mode } : {}) };
            if (Object.keys(patch).length === 0) throw fail('BAD_REQUEST', 'nothing to change', { field: 'journey' });
            return j.service.update(session, id, patch);
          }),
        );
      }),
    );

  userOption(journey.command('approve').description('approve this version (clinician): binds trigger, steps, template content, mode and purpose; the journey starts').argument('<id>', 'journey id'))
    .option('--revision <n>', 'the version reviewed (refused if the journey changed since)', (v) => Number.parseInt(v, 10))
    .action(action(ctx, async (id: string, o: { user: string; revision?: number }) => show(await asUser(o.user, (j, session) => j.service.approve(session, id, o.revision)))));

  userOption(journey.command('pause').description('stop running steps; queued messages are withdrawn').argument('<id>', 'journey id')).action(
    action(ctx, async (id: string, o: { user: string }) => {
      const r = await asUser(o.user, (j, session) => j.service.pause(session, id));
      ctx.out(r, (x: Journey & { cancelled: number }) => `${journeyLine(x)}\ncancelled ${x.cancelled} queued messages`);
    }),
  );

  userOption(journey.command('resume').description('run again (only while the approval still matches)').argument('<id>', 'journey id')).action(
    action(ctx, async (id: string, o: { user: string }) => show(await asUser(o.user, (j, session) => j.service.resume(session, id)))),
  );

  userOption(journey.command('status').description('a journey and its per-step counts').argument('<id>', 'journey id')).action(
    action(ctx, async (id: string, o: { user: string }) => ctx.out(await asUser(o.user, (j, session) => j.service.counts(session, id)), countsText)),
  );

  userOption(journey.command('list').description('every journey')).action(
    action(ctx, async (o: { user: string }) => ctx.out(await asUser(o.user, (j, session) => j.service.list(session)), (list: Journey[]) => list.map(journeyLine).join('\n') || 'no journeys')),
  );

  journey
    .command('run')
    .description('the scheduler: evaluate patients written since the last run, then run the steps that are due')
    .option('--watch', 'keep running (every --interval seconds) until Ctrl-C')
    .option('--interval <seconds>', 'seconds between passes with --watch', (v) => Number.parseInt(v, 10), 30)
    .action(
      action(ctx, async (o: { watch?: boolean; interval: number }) => {
        const app = await ctx.app();
        const journeys = await openJourneys(app, { listen: Boolean(o.watch) });
        const print = (r: TickReport) => ctx.out(r, (x: TickReport) => `caught up ${x.caughtUp} patients · ran ${x.ran} · queued ${x.queued} · exited ${x.exited}`);
        try {
          if (!o.watch) return print(await journeys.engine.tick());
          const scheduler = startJourneyScheduler(journeys.engine, { intervalMs: Math.max(1, o.interval) * 1000, log: app.log, onTick: print });
          await io.interrupted();
          await scheduler.stop();
        } finally {
          journeys.close();
        }
      }),
    );
}
