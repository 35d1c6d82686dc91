// `outreach campaign create|edit|submit|approve|reject|withdraw|schedule|cancel|status|list|forecast|send` and `outreach send run|dkim-key`: campaigns and the send pipeline from the command line, as a signed-in user.
import type { Command } from 'commander';
import type { App } from '../app.js';
import { action, type CliContext } from '../cli-context.js';
import { asCliUser, stdinUserIo, type CliUserIo } from '../cli-sign-in.js';
import { isPurpose, purposeList } from '../consent/purposes.js';
import { deliveryModes, type DeliveryMode } from '../delivery/tls-policy.js';
import { fail } from '../errors.js';
import { DkimKeyStore } from '../sending/dkim-keys.js';
import type { SendingService } from '../sending/sending-service.js';
import type { Session } from '../users/authorize.js';
import { cliActor } from '../users/cli-actor.js';
import type { AudienceRef, Campaign, CampaignInput, CampaignStats, CampaignStatus, TemplateRef } from './campaign-service.js';
import { campaignStatuses } from './campaign-service.js';
import type { DeliveryForecast } from './forecast.js';
import { exclusionReasons } from './recipients.js';

/** What the campaign commands read from the operator: the `--user` password and Ctrl-C. */
export type CampaignCliIo = CliUserIo;

interface UserOption {
  user: string;
}

interface ContentOptions {
  template?: string;
  templateVersion?: number;
  segment?: string;
  segmentVersion?: number;
  patient?: number;
  crmId?: string;
  purpose?: string;
  mode?: string;
}

const int = (v: string) => Number.parseInt(v, 10);

function templateOf(o: ContentOptions): TemplateRef | undefined {
  return o.template ? { name: o.template, ...(o.templateVersion ? { version: o.templateVersion } : {}) } : undefined;
}

function audienceOf(o: ContentOptions): AudienceRef | undefined {
  const given = [o.segment, o.patient, o.crmId].filter((x) => x !== undefined).length;
  if (given > 1) throw fail('BAD_REQUEST', 'give one audience: --segment, --patient or --crm-id', { field: 'audience' });
  if (o.segment) return { kind: 'segment', name: o.segment, ...(o.segmentVersion ? { version: o.segmentVersion } : {}) };
  if (o.patient !== undefined) return { kind: 'contact', patientId: o.patient };
  if (o.crmId) return { kind: 'contact', crmId: o.crmId };
  return undefined;
}

function modeOf(mode: string | undefined): DeliveryMode | undefined {
  if (mode === undefined) return undefined;
  if (!(deliveryModes as readonly string[]).includes(mode)) throw fail('BAD_REQUEST', `delivery mode must be one of ${deliveryModes.join(', ')}`, { field: 'mode' });
  return mode as DeliveryMode;
}

const contentOptions = (cmd: Command): Command =>
  cmd
    .option('--template <name>', 'template name')
    .option('--template-version <n>', 'a template version (default: the latest)', int)
    .option('--segment <name>', 'a saved segment (audience)')
    .option('--segment-version <n>', 'a segment version (default: the latest)', int)
    .option('--patient <id>', 'one patient by internal id (audience)', int)
    .option('--crm-id <id>', 'one contact by Salesforce id (audience)')
    .option('--purpose <purpose>', purposeList.join(' | '))
    .option('--mode <mode>', `${deliveryModes.join(' | ')} (default tls-or-escrow)`);

const userOption = (cmd: Command): Command => cmd.requiredOption('--user <name>', 'act as this user (the password is read from stdin)');

export function campaignLine(c: Campaign): string {
  const audience = c.audience.kind === 'segment' ? `segment version ${c.audience.segmentVersionId}` : `one contact`;
  return `#${c.id} ${c.name} · ${c.status} · ${c.purpose} · ${c.deliveryMode} · template version ${c.templateVersionId} · ${audience}${c.audienceCount !== null ? ` (${c.audienceCount})` : ''}${c.approvedBy ? ` · approved by ${c.approvedBy}` : ''}${c.scheduledAt ? ` · scheduled ${c.scheduledAt.toISOString()}` : ''}`;
}

function statsText(s: CampaignStats): string {
  const states = Object.entries(s.states).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing queued';
  const excluded = exclusionReasons.filter((r) => s.excluded[r] > 0).map((r) => `${r} ${s.excluded[r]}`).join(', ') || 'none';
  return `messages: ${states}\nexcluded: ${excluded}\nbounced ${s.bounced} · unsubscribed ${s.unsubscribed} · opened ${s.opened}`;
}

function forecastText(f: DeliveryForecast): string {
  const excluded = exclusionReasons.filter((r) => f.excluded[r] > 0).map((r) => `${r} ${f.excluded[r]}`).join(', ') || 'none';
  return [
    `${f.recipients} recipients over ${f.domains} domains: verified TLS ${f.tls} · escrow notice ${f.escrow} · plaintext (PHI-free) ${f.opportunistic} · held ${f.held}`,
    `excluded ${f.suppressed}: ${excluded}`,
    ...(f.modeProblem ? [`MODE NOT ALLOWED: ${f.modeProblem}`] : []),
  ].join('\n');
}

export function registerCampaignCommands(program: Command, ctx: CliContext, io: CampaignCliIo = stdinUserIo): void {
  /** Signs in as `--user` (audited like any sign-in), runs `fn` with the session, signs out. */
  const asUser = <T>(user: string, fn: (s: SendingService, session: Session, app: App) => Promise<T>): Promise<T> =>
    asCliUser(ctx, io, user, async (session, app) => fn(await app.sending(), session, app));
  const show = (c: Campaign) => ctx.out(c, campaignLine);

  const campaign = program.command('campaign').description('campaigns: create, submit for clinician approval, schedule, send, report');

  userOption(contentOptions(campaign.command('create').description('a draft campaign').argument('<name>', 'campaign name'))).action(
    action(ctx, async (name: string, o: ContentOptions & UserOption) => {
      const template = templateOf(o);
      const audience = audienceOf(o);
      if (!template) throw fail('BAD_REQUEST', '--template is required', { field: 'template' });
      if (!audience) throw fail('BAD_REQUEST', 'an audience is required: --segment, --patient or --crm-id', { field: 'audience' });
      if (!o.purpose || !isPurpose(o.purpose)) throw fail('BAD_REQUEST', `--purpose must be one of ${purposeList.join(', ')}`, { field: 'purpose' });
      const mode = modeOf(o.mode);
      const input: CampaignInput = { name, template, audience, purpose: o.purpose, ...(mode ? { deliveryMode: mode } : {}) };
      show(await asUser(o.user, (s, session) => s.campaigns.create(session, input)));
    }),
  );

  userOption(contentOptions(campaign.command('edit').description('change a campaign (voids its approval and cancels its queued messages)').argument('<id>', 'campaign id')))
    .option('--name <name>', 'a new name')
    .action(
      action(ctx, async (id: string, o: ContentOptions & UserOption & { name?: string }) => {
        const template = templateOf(o);
        const audience = audienceOf(o);
        const mode = modeOf(o.mode);
        const patch: Partial<CampaignInput> = {
          ...(o.name ? { name: o.name } : {}), ...(template ? { template } : {}), ...(audience ? { audience } : {}), ...(o.purpose ? { purpose: o.purpose } : {}), ...(mode ? { deliveryMode: mode } : {}),
        };
        if (Object.keys(patch).length === 0) throw fail('BAD_REQUEST', 'nothing to change', { field: 'campaign' });
        show(await asUser(o.user, (s, session) => s.campaigns.update(session, id, patch)));
      }),
    );

  userOption(campaign.command('submit').description('submit a draft for clinician approval').argument('<id>', 'campaign id')).action(
    action(ctx, async (id: string, o: UserOption) => show(await asUser(o.user, (s, session) => s.campaigns.submit(session, id)))),
  );

  userOption(campaign.command('approve').description('approve a pending campaign (clinician): binds content, audience, tags, mode and purpose').argument('<id>', 'campaign id'))
    .option('--comment <text>', 'a note for the record')
    .action(action(ctx, async (id: string, o: UserOption & { comment?: string }) => show(await asUser(o.user, (s, session) => s.campaigns.approve(session, id, o.comment)))));

  userOption(campaign.command('reject').description('reject a pending campaign with a comment (clinician)').argument('<id>', 'campaign id'))
    .requiredOption('--comment <text>', 'why')
    .action(action(ctx, async (id: string, o: UserOption & { comment: string }) => show(await asUser(o.user, (s, session) => s.campaigns.reject(session, id, o.comment)))));

  userOption(campaign.command('withdraw').description('withdraw an approval (clinician): every queued message is cancelled').argument('<id>', 'campaign id'))
    .option('--comment <text>', 'why')
    .action(
      action(ctx, async (id: string, o: UserOption & { comment?: string }) => {
        const r = await asUser(o.user, (s, session) => s.campaigns.withdraw(session, id, o.comment));
        ctx.out(r, (x: Campaign & { cancelled: number }) => `${campaignLine(x)}\ncancelled ${x.cancelled} queued messages`);
      }),
    );

  userOption(campaign.command('schedule').description('schedule an approved campaign (now, or --at)').argument('<id>', 'campaign id'))
    .option('--at <time>', 'ISO date-time')
    .action(
      action(ctx, async (id: string, o: UserOption & { at?: string }) => {
        const at = o.at ? new Date(o.at) : undefined;
        if (at && Number.isNaN(at.getTime())) throw fail('BAD_REQUEST', '--at must be an ISO date-time', { field: 'at' });
        show(await asUser(o.user, (s, session) => s.campaigns.schedule(session, id, at)));
      }),
    );

  userOption(campaign.command('cancel').description('cancel a campaign and its queued messages').argument('<id>', 'campaign id')).action(
    action(ctx, async (id: string, o: UserOption) => {
      const r = await asUser(o.user, (s, session) => s.campaigns.cancel(session, id));
      ctx.out(r, (x: Campaign & { cancelled: number }) => `${campaignLine(x)}\ncancelled ${x.cancelled} queued messages`);
    }),
  );

  userOption(campaign.command('status').description('a campaign, its decisions and its delivery counts').argument('<id>', 'campaign id')).action(
    action(ctx, async (id: string, o: UserOption) => {
      const r = await asUser(o.user, async (s, session) => {
        const c = await s.campaigns.get(session, id);
        const decisions = await s.campaigns.decisions(session, id);
        const stats = session.role === 'marketer' ? await s.campaigns.stats(session, id) : undefined;
        return { campaign: c, decisions, ...(stats ? { stats } : {}) };
      });
      ctx.out(r, (x: typeof r) =>
        [
          campaignLine(x.campaign),
          ...x.decisions.map((d) => `  ${d.at.toISOString()} ${d.decision} by ${d.by} (${d.role})${d.comment ? `: ${d.comment}` : ''}`),
          ...(x.stats ? [statsText(x.stats)] : []),
        ].join('\n'),
      );
    }),
  );

  userOption(campaign.command('list').description('campaigns, optionally by status'))
    .option('--status <status>', campaignStatuses.join(' | '))
    .action(
      action(ctx, async (o: UserOption & { status?: string }) => {
        if (o.status && !(campaignStatuses as readonly string[]).includes(o.status)) throw fail('BAD_REQUEST', `status must be one of ${campaignStatuses.join(', ')}`, { field: 'status' });
        const list = await asUser(o.user, (s, session) => s.campaigns.list(session, { ...(o.status ? { status: o.status as CampaignStatus } : {}), limit: 500 }));
        ctx.out(list, (l: Campaign[]) => (l.length ? l.map(campaignLine).join('\n') : '(no campaigns)'));
      }),
    );

  userOption(contentOptions(campaign.command('forecast').description('how an audience would be delivered now: verified TLS, escrow, held, excluded'))).action(
    action(ctx, async (o: ContentOptions & UserOption) => {
      const template = templateOf(o);
      const audience = audienceOf(o);
      if (!template || !audience || !o.purpose) throw fail('BAD_REQUEST', '--template, an audience and --purpose are required', { field: 'template' });
      const purpose = o.purpose;
      const f = await asUser(o.user, (s, session) => s.campaigns.forecast(session, { template, audience, purpose, deliveryMode: modeOf(o.mode) ?? 'tls-or-escrow' }));
      ctx.out(f, forecastText);
    }),
  );

  userOption(campaign.command('send').description('send an approved campaign now: schedule, queue its audience, deliver until done').argument('<id>', 'campaign id')).action(
    action(ctx, async (id: string, o: UserOption) => {
      const r = await asUser(o.user, async (s, session) => {
        const c = await s.campaigns.get(session, id);
        if (c.status === 'approved' || (c.status === 'scheduled' && (c.scheduledAt?.getTime() ?? 0) > Date.now())) await s.campaigns.schedule(session, id);
        const summary = await s.drainOnce();
        return { campaign: await s.campaigns.get(session, id), summary, stats: await s.campaigns.stats(session, id) };
      });
      ctx.out(r, (x: typeof r) => `${campaignLine(x.campaign)}\n${statsText(x.stats)}`);
    }),
  );

  const send = program.command('send').description('the delivery pipeline');
  send
    .command('run')
    .description('queue due campaigns and deliver until nothing is due (--watch: keep running until Ctrl-C)')
    .option('--watch', 'keep running, polling for due messages')
    .action(
      action(ctx, async (o: { watch?: boolean }) => {
        const s = await (await ctx.app()).sending();
        if (o.watch) {
          s.start();
          await io.interrupted();
          await s.stop();
          ctx.out({ stopped: true }, () => 'stopped');
          return;
        }
        const total = { claimed: 0, delivered: 0, notices: 0, held: 0, retried: 0, failed: 0, cancelled: 0, campaignsQueued: 0 };
        let stop = false;
        void io.interrupted().then(() => (stop = true));
        for (;;) {
          const r = await s.drainOnce();
          for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
          if (stop || (r.claimed === 0 && r.campaignsQueued === 0)) break;
        }
        ctx.out(total, (t: typeof total) => `delivered ${t.delivered} · escrow notices ${t.notices} · held ${t.held} · retried ${t.retried} · failed ${t.failed} · cancelled ${t.cancelled}`);
      }),
    );

  send
    .command('dkim-key')
    .description('create the DKIM key of a sender domain and print the TXT record to publish (the key is sealed in the store)')
    .argument('<domain>', 'the sender domain')
    .requiredOption('--selector <selector>', 'the DKIM selector (the sender is added with the same selector)')
    .action(
      action(ctx, async (domain: string, o: { selector: string }) => {
        const app = await ctx.app();
        const keys = new DkimKeyStore({ db: app.db, cipher: app.cipher });
        let info = await keys.info(domain, o.selector);
        if (!info) {
          info = await keys.create(domain, o.selector, cliActor().name);
          await app.audit.append({ actor: cliActor().name, role: 'admin', action: 'dkim-key.create', purpose: 'administration', entity: `dkim/${info.domain}` });
        }
        ctx.out(info, (i: NonNullable<typeof info>) => `publish this TXT record:\n${i.dnsName}  IN TXT  "${i.dnsValue}"`);
      }),
    );
}
