// `outreach salesforce connect|status|link-contacts|push-campaign|push-consent|pull-optouts|policy`: the admin's Salesforce sync.
import type { Command } from 'commander';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import { cliActor } from '../users/cli-actor.js';
import { policyWidenings, type PolicyWidening } from './phi-policy.js';
import { salesforceSyncOf } from './app-sync.js';
import type { SyncSettingsInput } from './sync-settings.js';

function positiveInt(value: string, field: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw fail('BAD_REQUEST', `${field} must be a positive integer`, { field });
  return n;
}

const counts = (failed: Record<string, number>) =>
  Object.keys(failed).length ? ` refused: ${Object.entries(failed).map(([k, v]) => `${k}×${v}`).join(', ')}` : '';

export function registerSalesforceCommands(program: Command, ctx: CliContext): void {
  const sf = program.command('salesforce').description('Salesforce sync: connect, push campaigns, consent both ways (admin)');

  sf.command('connect')
    .description('sign in with the JWT bearer flow (SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_JWT_KEY_FILE) and link Contacts')
    .option('--match-by <rule>', 'link Contacts to patients by: email | external-id')
    .option('--external-id-field <field>', 'Contact field holding the FHIR Patient id (e.g. FHIR_Patient_Id__c)')
    .option('--match-source <endpoint>', 'FHIR endpoint whose Patient ids that field holds')
    .option('--bulk-threshold <n>', 'members above this go through Bulk API 2.0 (default 200)')
    .option('--member-status <status>', 'CampaignMember status of pushed members (default Sent)')
    .action(
      action(ctx, async (opts: { matchBy?: string; externalIdField?: string; matchSource?: string; bulkThreshold?: string; memberStatus?: string }) => {
        const sync = salesforceSyncOf(await ctx.app());
        const patch: Partial<SyncSettingsInput> = {};
        if (opts.matchBy !== undefined) {
          if (opts.matchBy !== 'email' && opts.matchBy !== 'external-id') throw fail('BAD_REQUEST', 'match-by must be email or external-id', { field: 'matchBy' });
          patch.matchBy = opts.matchBy;
        }
        if (opts.externalIdField !== undefined) patch.externalIdField = opts.externalIdField;
        if (opts.matchSource !== undefined) patch.matchSource = opts.matchSource;
        if (opts.bulkThreshold !== undefined) patch.bulkThreshold = positiveInt(opts.bulkThreshold, 'bulkThreshold');
        if (opts.memberStatus !== undefined) patch.memberStatus = opts.memberStatus;
        if (Object.keys(patch).length) await sync.updateSettings(patch, cliActor());
        const r = await sync.connect(cliActor());
        ctx.out(r, (x: typeof r) =>
          `connected to ${x.instanceUrl} (org ${x.orgId}, API v${x.apiVersion}); ContactPointTypeConsent ${x.hasConsentObject ? 'present' : 'absent'}; ` +
          `contacts read ${x.links.contacts}, linked ${x.links.linked}, unmatched ${x.links.unmatched}, ambiguous ${x.links.ambiguous}`,
        );
      }),
    );

  sf.command('status')
    .description('connection state, last push and opt-out pull, linked Contacts and the PHI policy')
    .action(
      action(ctx, async () => {
        const d = await salesforceSyncOf(await ctx.app()).details();
        ctx.out(d, (x: typeof d) =>
          [
            `connected: ${x.connected ? 'yes' : 'no'}${x.instanceUrl ? ` (${x.instanceUrl}, org ${x.orgId}, API v${x.apiVersion})` : ''}`,
            `user: ${x.username ?? '-'}`,
            `linked contacts: ${x.linkedContacts} (match by ${x.settings.matchBy}${x.settings.matchBy === 'external-id' ? ` ${x.settings.externalIdField}` : ''})`,
            `last push: ${x.lastPushAt ?? 'never'} · last opt-out pull: ${x.lastOptOutPullAt ?? 'never'} · last consent write-back: ${x.lastConsentPushAt ?? 'never'}`,
            `PHI policy: campaign name and membership${x.settings.phiPolicy.allow.length ? ` + ${x.settings.phiPolicy.allow.join(', ')}` : ' only'}`,
            `bulk above ${x.settings.bulkThreshold} members · ContactPointTypeConsent ${x.hasConsentObject ? 'present' : 'absent'}`,
            ...(x.error ? [`last error: ${x.error}`] : []),
          ].join('\n'),
        );
      }),
    );

  sf.command('link-contacts')
    .description('link Contacts changed since the last pull to patients (external id or e-mail blind index)')
    .action(
      action(ctx, async () => {
        const r = await salesforceSyncOf(await ctx.app()).linkContacts();
        ctx.out(r, (x: typeof r) => `contacts read ${x.contacts}, linked ${x.linked}, unmatched ${x.unmatched}, ambiguous ${x.ambiguous}`);
      }),
    );

  sf.command('push-campaign')
    .description('push an approved campaign (name and membership; more only as the PHI policy allows) to Campaign + CampaignMember')
    .argument('<campaignId>', 'the campaign id')
    .action(
      action(ctx, async (campaignId: string) => {
        const r = await salesforceSyncOf(await ctx.app()).pushStoredCampaign(campaignId, cliActor());
        ctx.out(r, (x: typeof r) =>
          `Campaign ${x.salesforceCampaignId} (${x.fieldsSent.join(', ')}) via ${x.via}: ${x.added} added, ${x.alreadyPresent} already members, ${x.unlinked} without a linked Contact${counts(x.failed)}`,
        );
      }),
    );

  sf.command('push-consent')
    .description('write consent changed since the last write-back to Contact.HasOptedOutOfEmail and ContactPointTypeConsent')
    .action(
      action(ctx, async () => {
        const r = await salesforceSyncOf(await ctx.app()).pushConsent(cliActor());
        ctx.out(r, (x: typeof r) =>
          `${x.patients} patients changed: ${x.contactsUpdated} Contacts updated, ${x.consentRecordsWritten} consent records written, ${x.unlinked} unlinked, ${x.withoutIndividual} without an Individual${counts(x.failed)}`,
        );
      }),
    );

  sf.command('pull-optouts')
    .description('record e-mail opt-outs made in Salesforce (by SystemModstamp since the last pull) in the authorization registry')
    .action(
      action(ctx, async () => {
        const r = await salesforceSyncOf(await ctx.app()).pullOptOuts();
        ctx.out(r, (x: typeof r) => `${x.contacts} opted-out Contacts read: ${x.recorded} opt-outs recorded, ${x.alreadyOptedOut} already opted out, ${x.unlinked} unlinked`);
      }),
    );

  sf.command('policy')
    .description(`what goes to Salesforce beyond campaign name and membership (audited): --allow ${policyWidenings.join(',')} or --default`)
    .option('--allow <list>', `comma-separated: ${policyWidenings.join(', ')}`)
    .option('--default', 'campaign name and membership only')
    .action(
      action(ctx, async (opts: { allow?: string; default?: boolean }) => {
        const sync = salesforceSyncOf(await ctx.app());
        if (opts.allow === undefined && !opts.default) {
          const s = await sync.settings();
          ctx.out(s.phiPolicy, (p: typeof s.phiPolicy) => `campaign name and membership${p.allow.length ? ` + ${p.allow.join(', ')}` : ' only'}`);
          return;
        }
        const allow = opts.default ? [] : opts.allow!.split(',').map((s) => s.trim()).filter(Boolean);
        for (const a of allow) {
          if (!(policyWidenings as readonly string[]).includes(a)) throw fail('BAD_REQUEST', `--allow takes ${policyWidenings.join(', ')}`, { field: 'allow' });
        }
        const s = await sync.setPhiPolicy({ allow: [...new Set(allow)] as PolicyWidening[] }, cliActor());
        ctx.out(s.phiPolicy, (p: typeof s.phiPolicy) => `PHI policy: campaign name and membership${p.allow.length ? ` + ${p.allow.join(', ')}` : ' only'}`);
      }),
    );
}
