// `outreach smart register|update|disable|enable|list|link-practitioner|unlink-practitioner|practitioners`: EHRs that launch the approval app, and which clinician each Practitioner is (admin).
import type { Command } from 'commander';
import type { App } from '../app.js';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { SmartEhrRegistry, type PractitionerLink, type SmartEhr } from './ehr-registry.js';

const registryOf = (app: App) => new SmartEhrRegistry({ db: app.db, audit: app.audit, users: app.users });

const ehrLine = (e: SmartEhr) =>
  `${e.id.padStart(3)}  ${e.name}  iss ${e.iss}  client ${e.clientId}  redirect ${e.redirectUri}  frame ${e.frameOrigins.join(',')}${e.autoProvision ? '  auto-provision' : ''}${e.disabledAt ? '  disabled' : ''}`;
const linkLine = (l: PractitionerLink) => `${l.practitioner.padEnd(32)} ${l.username}${l.provisioned ? ' (auto-provisioned)' : ''}`;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerSmartCommands(program: Command, ctx: CliContext): void {
  const smart = program.command('smart').description('the SMART on FHIR approval app: EHRs that launch it, practitioner links (admin)');

  smart
    .command('register')
    .description('register an EHR for app launch (or update the registration of the same iss)')
    .requiredOption('--name <name>', 'a label for the EHR')
    .requiredOption('--iss <url>', "the EHR's FHIR base URL, as it sends it in `iss`")
    .requiredOption('--client-id <id>', 'the client id the EHR issued to this app')
    .requiredOption('--redirect-uri <url>', "this connector's /smart/callback URL, as registered with the EHR")
    .option('--frame-origin <origin>', 'an origin allowed to frame the app (repeatable; default: the origin of iss)', collect)
    .option('--auto-provision', 'give unlinked practitioners of this EHR a clinician account at first launch', false)
    .action(
      action(ctx, async (opts: { name: string; iss: string; clientId: string; redirectUri: string; frameOrigin?: string[]; autoProvision: boolean }) => {
        const app = await ctx.app();
        const ehr = await registryOf(app).register(
          { name: opts.name, iss: opts.iss, clientId: opts.clientId, redirectUri: opts.redirectUri, frameOrigins: opts.frameOrigin ?? [], autoProvision: opts.autoProvision },
          cliActor(),
        );
        ctx.out(ehr, (e: SmartEhr) => `registered ${ehrLine(e)}\nLaunch URL for the EHR: ${new URL('/smart/launch', e.redirectUri).href}`);
      }),
    );

  smart
    .command('update')
    .description("change an EHR registration's name, client id, redirect URI, framing origins or auto-provisioning (not its iss)")
    .requiredOption('--ehr <id-or-iss>', 'the EHR registration (id or iss)')
    .option('--name <name>', 'a new label')
    .option('--client-id <id>', 'the client id the EHR issued to this app')
    .option('--redirect-uri <url>', "this connector's /smart/callback URL, as registered with the EHR")
    .option('--frame-origin <origin>', 'an origin allowed to frame the app (repeatable; replaces the list)', collect)
    .option('--auto-provision <yes-or-no>', 'give unlinked practitioners a clinician account at first launch (yes or no)')
    .action(
      action(ctx, async (opts: { ehr: string; name?: string; clientId?: string; redirectUri?: string; frameOrigin?: string[]; autoProvision?: string }) => {
        const app = await ctx.app();
        const registry = registryOf(app);
        const ehr = await registry.find(opts.ehr);
        if (opts.autoProvision !== undefined && !['yes', 'no'].includes(opts.autoProvision)) {
          throw fail('BAD_REQUEST', '--auto-provision: yes or no', { field: 'autoProvision' });
        }
        const updated = await registry.update(
          ehr.id,
          {
            ...(opts.name !== undefined ? { name: opts.name } : {}),
            ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
            ...(opts.redirectUri !== undefined ? { redirectUri: opts.redirectUri } : {}),
            ...(opts.frameOrigin ? { frameOrigins: opts.frameOrigin } : {}),
            ...(opts.autoProvision !== undefined ? { autoProvision: opts.autoProvision === 'yes' } : {}),
          },
          cliActor(),
        );
        ctx.out(updated, (e: SmartEhr) => `updated ${ehrLine(e)}`);
      }),
    );

  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    smart
      .command(name)
      .description(disabled ? 'stop an EHR launching the app (its open app sessions end)' : 'let a disabled EHR launch the app again')
      .requiredOption('--ehr <id>', 'the EHR registration id (`outreach smart list`)')
      .action(
        action(ctx, async (opts: { ehr: string }) => {
          const app = await ctx.app();
          const ehr = await registryOf(app).update(opts.ehr, { disabled }, cliActor());
          ctx.out(ehr, (e: SmartEhr) => `${name}d ${ehrLine(e)}`);
        }),
      );
  }

  smart
    .command('list')
    .description('registered EHRs')
    .action(
      action(ctx, async () => {
        const app = await ctx.app();
        const list = await registryOf(app).list();
        ctx.out(list, (l: SmartEhr[]) => (l.length ? l.map(ehrLine).join('\n') : '(no EHR registered: run `outreach smart register`)'));
      }),
    );

  smart
    .command('link-practitioner')
    .description('link an EHR Practitioner to a clinician account: approvals made in the app are signed by both')
    .requiredOption('--ehr <id-or-iss>', 'the EHR registration (id or iss)')
    .requiredOption('--practitioner <ref>', 'Practitioner/<id> as the EHR names it in fhirUser')
    .requiredOption('--username <name>', 'the clinician account')
    .action(
      action(ctx, async (opts: { ehr: string; practitioner: string; username: string }) => {
        const app = await ctx.app();
        const link = await registryOf(app).link(opts.ehr, opts.practitioner, opts.username, cliActor());
        ctx.out(link, (l: PractitionerLink) => `linked ${linkLine(l)}`);
      }),
    );

  smart
    .command('unlink-practitioner')
    .description("remove a practitioner's link (their open app sessions end)")
    .requiredOption('--ehr <id-or-iss>', 'the EHR registration (id or iss)')
    .requiredOption('--practitioner <ref>', 'Practitioner/<id>')
    .action(
      action(ctx, async (opts: { ehr: string; practitioner: string }) => {
        const app = await ctx.app();
        await registryOf(app).unlink(opts.ehr, opts.practitioner, cliActor());
        ctx.out({ unlinked: opts.practitioner }, () => `unlinked ${opts.practitioner}`);
      }),
    );

  smart
    .command('practitioners')
    .description('practitioners linked to clinician accounts for an EHR')
    .requiredOption('--ehr <id-or-iss>', 'the EHR registration (id or iss)')
    .action(
      action(ctx, async (opts: { ehr: string }) => {
        const app = await ctx.app();
        const links = await registryOf(app).links(opts.ehr);
        ctx.out(links, (l: PractitionerLink[]) => (l.length ? l.map(linkLine).join('\n') : '(no practitioner linked)'));
      }),
    );
}
