// Pushes a campaign to Salesforce: the Campaign record (policy fields only) and its CampaignMembers, by REST composite or Bulk API 2.0.
import type { Connection } from '@salesforce/core';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { scanText } from '../compose/phi-scanner.js';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';
import { bulkInsert } from './bulk-ingest.js';
import type { ContactLinks } from './contact-links.js';
import { createRecord, saveCollection, saveErrorCode, updateRecord } from './org-api.js';
import { campaignRecord, memberRecord, type CampaignForPush } from './phi-policy.js';
import { countCodes } from './salesforce-error.js';
import type { SyncSettings } from './sync-settings.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['getPushedCampaign', 'savePushedCampaign', 'pushedMembers', 'insertMembers']);

export interface PushReport {
  campaignKey: string;
  /** The Salesforce Campaign id. */
  salesforceCampaignId: string;
  /** The Campaign fields the PHI policy let through. */
  fieldsSent: string[];
  via: 'composite' | 'bulk' | 'none';
  members: number;
  /** New CampaignMembers created now. */
  added: number;
  /** Already in the Salesforce campaign (pushed before, or DUPLICATE_VALUE). */
  alreadyPresent: number;
  /** Members with no linked Contact: not sent. */
  unlinked: number;
  /** Rows Salesforce refused, by its status code. */
  failed: Record<string, number>;
  bulkJobIds: string[];
}

export interface PushDeps {
  db: Db;
  audit: AuditLog;
  links: ContactLinks;
  settings: SyncSettings;
  actor: { name: string; role: string };
  clock: () => Date;
}

const keyPattern = /^[A-Za-z0-9._:/-]{1,100}$/;

export async function pushCampaign(conn: Connection, campaign: CampaignForPush, deps: PushDeps): Promise<PushReport> {
  if (!keyPattern.test(campaign.key)) throw fail('BAD_REQUEST', 'campaign key must be a short identifier', { field: 'key' });
  if (!campaign.name.trim()) throw fail('BAD_REQUEST', 'campaign name is empty', { field: 'name' });
  const { db, audit, links, settings, actor, clock } = deps;
  const { record, fields } = campaignRecord(campaign, settings.phiPolicy);
  // Labels are criteria, never a person: a name or description holding an identifier (e-mail, phone, MRN, birth date) stops here.
  for (const [field, value] of Object.entries(record)) {
    if (typeof value !== 'string') continue;
    const kinds = [...new Set(scanText(value).filter((f) => f.category === 'identifier').map((f) => f.kind))];
    if (kinds.length) throw fail('BAD_REQUEST', `the Campaign ${field} would carry a patient identifier (${kinds.join(', ')}): rename it`, { field });
  }

  // The Campaign: created once, then updated; fields a narrowed policy no longer allows are cleared.
  const [pushed] = await db.query<{ sf_campaign_id: string; fields_sent: string[] }>(q.getPushedCampaign, [campaign.key]);
  let campaignId: string;
  if (pushed) {
    campaignId = pushed.sf_campaign_id;
    const cleared = Object.fromEntries(pushed.fields_sent.filter((f) => !fields.includes(f)).map((f) => [f, null]));
    await updateRecord(conn, 'Campaign', campaignId, { ...record, ...cleared });
  } else {
    campaignId = await createRecord(conn, 'Campaign', record);
  }
  await db.query(q.savePushedCampaign, [campaign.key, campaignId, fields, actor.name, clock()]);

  const memberIds = [...new Set(campaign.memberPatientIds)];
  const report: PushReport = {
    campaignKey: campaign.key,
    salesforceCampaignId: campaignId,
    fieldsSent: fields,
    via: 'none',
    members: memberIds.length,
    added: 0,
    alreadyPresent: 0,
    unlinked: 0,
    failed: {},
    bulkJobIds: [],
  };
  const already = new Set<number>();
  for (let i = 0; i < memberIds.length; i += 5000) {
    for (const r of await db.query<{ patient_id: string | number }>(q.pushedMembers, [campaign.key, memberIds.slice(i, i + 5000)])) already.add(Number(r.patient_id));
  }
  report.alreadyPresent = already.size;
  const contacts = await links.contactsOf(memberIds.filter((p) => !already.has(p)));
  const toSend: Array<{ patientId: number; contactId: string }> = [];
  for (const p of memberIds) {
    if (already.has(p)) continue;
    const contactId = contacts.get(p);
    if (contactId) toSend.push({ patientId: p, contactId });
    else report.unlinked += 1;
  }
  if (toSend.length === 0) return report;

  const patientByContact = new Map(toSend.map((m) => [m.contactId, m.patientId]));
  const created: Array<{ patientId: number; memberId: string | null }> = [];
  const failures: string[] = [];
  const settle = (contactId: string, id: string | undefined | null, error: string | undefined) => {
    const patientId = patientByContact.get(contactId);
    if (patientId === undefined) return;
    if (!error) {
      created.push({ patientId, memberId: id ?? null });
      report.added += 1;
    } else if (error === 'DUPLICATE_VALUE') {
      // Someone added the Contact in Salesforce already: it is a member, which is what we wanted.
      created.push({ patientId, memberId: null });
      report.alreadyPresent += 1;
    } else failures.push(error);
  };
  const rows = toSend.map((m) => memberRecord(campaignId, m.contactId, settings.memberStatus));
  if (toSend.length > settings.bulkThreshold) {
    report.via = 'bulk';
    const bulk = await bulkInsert(conn, 'CampaignMember', ['CampaignId', 'ContactId', 'Status'], rows, {
      pollMs: settings.bulkPollMs,
      timeoutMs: settings.bulkTimeoutMs,
    });
    report.bulkJobIds = bulk.jobIds;
    for (const r of bulk.results) settle(r.row.ContactId!, r.id, r.error);
    for (let i = 0; i < bulk.unprocessed; i++) failures.push('UNPROCESSED');
  } else {
    report.via = 'composite';
    const results = await saveCollection(conn, 'POST', 'CampaignMember', rows);
    results.forEach((r, i) => settle(rows[i]!.ContactId, r.id, r.success ? undefined : saveErrorCode(r)));
  }
  report.failed = countCodes(failures);

  const at = clock();
  if (created.length) {
    await db.transaction(async (tx) => {
      await tx.query(q.insertMembers, [campaign.key, created.map((c) => c.patientId), created.map((c) => c.memberId), at]);
      // Membership in a campaign told to the CRM is a disclosure: one audit row per patient (accounting of disclosures).
      const entries: AuditEntry[] = created.map((c) => ({
        actor: actor.name,
        role: actor.role,
        action: 'salesforce.disclose',
        purpose: campaign.purpose && /^[a-z][a-z0-9-]*$/.test(campaign.purpose) ? campaign.purpose : 'operations',
        patientId: c.patientId,
        entity: `salesforce/${campaign.key}`,
        at,
      }));
      await audit.append(entries, tx);
    });
  }
  if (created.length === 0 && failures.length > 0) {
    const [code] = Object.entries(report.failed).sort((a, b) => b[1] - a[1])[0]!;
    throw fail('SALESFORCE_ERROR', `Salesforce refused every campaign member: ${code}`, { salesforceCode: code, operation: 'add campaign members' });
  }
  return report;
}
