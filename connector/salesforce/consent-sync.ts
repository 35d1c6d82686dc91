// Consent both ways: write the registry's state back to Contact.HasOptedOutOfEmail (and ContactPointTypeConsent where the org
// has it), and pull opt-outs made in Salesforce, incrementally by SystemModstamp, into the registry as `crm` opt-outs.
import type { Connection } from '@salesforce/core';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthorizationDecision } from '../consent/gate.js';
import { CHANNEL_WIDE } from '../consent/purposes.js';
import type { Actor, AuthorizationChange, ConsentRegistry } from '../consent/registry.js';
import { loadQueries, type Db } from '../store/db.js';
import type { ContactLinks } from './contact-links.js';
import { parseSalesforceDate, queryPages, saveCollection, saveErrorCode, soqlDateTime, soqlId } from './org-api.js';
import { countCodes } from './salesforce-error.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['consentChangesAfter', 'lastConsentEvent']);

/** The registry actor of changes pulled from Salesforce (and the name write-back skips, so nothing echoes back). */
export const salesforceActor: Actor = { name: 'salesforce-sync', role: 'system' };
/** ContactPointTypeConsent rows this connector owns carry this CaptureSource. */
export const captureSource = 'Secure Outreach';

export interface ConsentPushReport {
  patients: number;
  /** Patients with a linked Contact whose state was written. */
  contactsUpdated: number;
  consentRecordsWritten: number;
  /** Linked Contacts without an Individual: no ContactPointTypeConsent can name them. */
  withoutIndividual: number;
  unlinked: number;
  failed: Record<string, number>;
}

export interface OptOutPullReport {
  /** Opted-out Contacts read. */
  contacts: number;
  /** New channel opt-outs recorded in the registry. */
  recorded: number;
  /** Already opted out in the registry, or overtaken by a newer decision recorded here. */
  alreadyOptedOut: number;
  /** Contacts linked to no patient. */
  unlinked: number;
  watermark: Date | null;
}

type PrivacyStatus = 'OptIn' | 'OptOut' | 'NotSeen';

/**
 * The CRM's view of one patient. HasOptedOutOfEmail mirrors the registry's channel-wide record only where one exists
 * (revoked: true, lifted: false); without one the field is left alone, so an opt-out made in Salesforce and not pulled yet
 * is never overwritten with false. The consent record follows the marketing authorization.
 */
export function crmConsentOf(decision: AuthorizationDecision, channelWide: 'revoked' | 'active' | undefined): { hasOptedOutOfEmail?: boolean; privacyStatus: PrivacyStatus } {
  const privacyStatus: PrivacyStatus = decision.allowed ? 'OptIn' : decision.reason === 'no-authorization' ? 'NotSeen' : 'OptOut';
  return channelWide === undefined ? { privacyStatus } : { hasOptedOutOfEmail: channelWide === 'revoked', privacyStatus };
}

export interface ConsentSyncDeps {
  db: Db;
  audit: AuditLog;
  consent: ConsentRegistry;
  links: ContactLinks;
  clock: () => Date;
}

/** Writes back every patient whose email consent changed after `afterEventId`; returns the report and the event id reached. */
export async function pushConsent(
  conn: Connection,
  afterEventId: string,
  hasConsentObject: boolean,
  actor: { name: string; role: string },
  deps: ConsentSyncDeps,
): Promise<{ report: ConsentPushReport; lastEventId: string; complete: boolean }> {
  const { db, audit, consent, links, clock } = deps;
  const [last] = await db.query<{ last_id: string | number }>(q.lastConsentEvent);
  const lastEventId = String(last?.last_id ?? 0);
  const changed = (await db.query<{ patient_id: string | number }>(q.consentChangesAfter, [afterEventId, salesforceActor.name, lastEventId])).map((r) =>
    Number(r.patient_id),
  );
  const report: ConsentPushReport = { patients: changed.length, contactsUpdated: 0, consentRecordsWritten: 0, withoutIndividual: 0, unlinked: 0, failed: {} };
  if (changed.length === 0) return { report, lastEventId, complete: true };
  const contacts = await links.contactsOf(changed);
  report.unlinked = changed.length - contacts.size;
  const linked = [...contacts.keys()];
  if (linked.length === 0) return { report, lastEventId, complete: true };
  const now = clock();
  const decisions = await consent.isAllowedMany(linked, 'marketing', 'email', now);
  const channelWide = new Map<string, 'revoked' | 'active'>();
  for (const r of await consent.currentMany(linked)) {
    if (r.purpose === CHANNEL_WIDE && r.channel === 'email' && r.status !== 'expired') channelWide.set(r.patientId, r.status);
  }
  const stateOf = (p: number) => crmConsentOf(decisions.get(String(p))!, channelWide.get(String(p)));
  const failures: string[] = [];
  const written = new Set<number>();

  const flagged = linked.filter((p) => stateOf(p).hasOptedOutOfEmail !== undefined);
  const updates = flagged.map((p) => ({ Id: contacts.get(p)!, HasOptedOutOfEmail: stateOf(p).hasOptedOutOfEmail }));
  const results = await saveCollection(conn, 'PATCH', 'Contact', updates);
  results.forEach((r, i) => {
    if (r.success) {
      report.contactsUpdated += 1;
      written.add(flagged[i]!);
    } else failures.push(saveErrorCode(r));
  });

  if (hasConsentObject) {
    const individualOf = new Map<string, string>();
    const linkedContacts = linked.map((p) => contacts.get(p)!);
    for (let i = 0; i < linkedContacts.length; i += 200) {
      const ids = linkedContacts.slice(i, i + 200).map(soqlId);
      for await (const page of queryPages<{ Id: string; IndividualId: string | null }>(conn, `SELECT Id, IndividualId FROM Contact WHERE Id IN (${ids.join(', ')})`)) {
        for (const c of page) if (c.IndividualId) individualOf.set(c.Id, c.IndividualId);
      }
    }
    const existing = new Map<string, string>();
    const parties = [...new Set(individualOf.values())];
    for (let i = 0; i < parties.length; i += 200) {
      const ids = parties.slice(i, i + 200).map(soqlId);
      const soql =
        `SELECT Id, PartyId FROM ContactPointTypeConsent WHERE ContactPointType = 'Email' AND CaptureSource = '${captureSource}'` +
        ` AND PartyId IN (${ids.join(', ')})`;
      for await (const page of queryPages<{ Id: string; PartyId: string }>(conn, soql)) for (const r of page) existing.set(r.PartyId, r.Id);
    }
    const creates: Array<Record<string, unknown>> = [];
    const patches: Array<Record<string, unknown>> = [];
    const createdFor: number[] = [];
    const patchedFor: number[] = [];
    for (const p of linked) {
      const party = individualOf.get(contacts.get(p)!);
      if (!party) {
        report.withoutIndividual += 1;
        continue;
      }
      const status = stateOf(p).privacyStatus;
      const fields = { PrivacyConsentStatus: status, CaptureDate: now.toISOString(), EffectiveFrom: now.toISOString() };
      const id = existing.get(party);
      if (id) {
        patches.push({ Id: id, ...fields });
        patchedFor.push(p);
      } else {
        creates.push({ Name: 'Email consent', PartyId: party, ContactPointType: 'Email', CaptureContactPointType: 'Web', CaptureSource: captureSource, ...fields });
        createdFor.push(p);
      }
    }
    const settle = (rs: Awaited<ReturnType<typeof saveCollection>>, owners: number[]) =>
      rs.forEach((r, i) => {
        if (r.success) {
          report.consentRecordsWritten += 1;
          written.add(owners[i]!);
        } else failures.push(saveErrorCode(r));
      });
    if (creates.length) settle(await saveCollection(conn, 'POST', 'ContactPointTypeConsent', creates), createdFor);
    if (patches.length) settle(await saveCollection(conn, 'PATCH', 'ContactPointTypeConsent', patches), patchedFor);
  }
  report.failed = countCodes(failures);
  if (written.size) {
    const at = clock();
    await audit.append(
      [...written].map((patientId) => ({ actor: actor.name, role: actor.role, action: 'salesforce.disclose', purpose: 'operations', patientId, entity: 'salesforce/consent', at })),
    );
  }
  // A refused record is retried next time: the watermark moves only when everything went through.
  return { report, lastEventId, complete: failures.length === 0 };
}

/**
 * Reads opt-outs made in Salesforce since `since` and records a channel opt-out for their patients: Contacts with
 * HasOptedOutOfEmail, and (where the org has it) e-mail ContactPointTypeConsent rows set to OptOut for every purpose that
 * this connector did not write itself.
 */
export async function pullOptOuts(conn: Connection, since: Date | null, hasConsentObject: boolean, deps: ConsentSyncDeps): Promise<OptOutPullReport> {
  const after = since ? ` AND SystemModstamp >= ${soqlDateTime(since)}` : '';
  const report: OptOutPullReport = { contacts: 0, recorded: 0, alreadyOptedOut: 0, unlinked: 0, watermark: since };
  const advance = (stamp: string) => {
    const modified = parseSalesforceDate(stamp);
    if (!report.watermark || modified > report.watermark) report.watermark = modified;
  };
  const contactSoql = `SELECT Id, SystemModstamp FROM Contact WHERE HasOptedOutOfEmail = true${after} ORDER BY SystemModstamp, Id`;
  for await (const page of queryPages<{ Id: string; SystemModstamp: string }>(conn, contactSoql)) {
    for (const c of page) advance(c.SystemModstamp);
    await recordOptOuts(new Map(page.map((c) => [c.Id, parseSalesforceDate(c.SystemModstamp)])), report, deps);
  }
  if (hasConsentObject) {
    const consentSoql =
      `SELECT PartyId, SystemModstamp FROM ContactPointTypeConsent WHERE ContactPointType = 'Email' AND PrivacyConsentStatus = 'OptOut'` +
      ` AND DataUsePurposeId = null AND CaptureSource != '${captureSource}'${after} ORDER BY SystemModstamp, Id`;
    for await (const page of queryPages<{ PartyId: string; SystemModstamp: string }>(conn, consentSoql)) {
      const changedAt = new Map<string, Date>();
      for (const c of page) {
        advance(c.SystemModstamp);
        if (c.PartyId) changedAt.set(c.PartyId, parseSalesforceDate(c.SystemModstamp));
      }
      const parties = [...changedAt.keys()];
      for (let i = 0; i < parties.length; i += 200) {
        const ids = parties.slice(i, i + 200).map(soqlId);
        const soql = `SELECT Id, IndividualId FROM Contact WHERE IndividualId IN (${ids.join(', ')})`;
        for await (const contacts of queryPages<{ Id: string; IndividualId: string }>(conn, soql)) {
          await recordOptOuts(new Map(contacts.map((c) => [c.Id, changedAt.get(c.IndividualId)!])), report, deps);
        }
      }
    }
  }
  return report;
}

/**
 * Records opt-outs for the patients of these Contacts (Contact id -> when the opt-out changed in Salesforce). A patient
 * is skipped when already opted out, or when a channel-wide decision recorded here is newer than the Salesforce change
 * (an opt-in taken from the patient after it): the pull window overlaps, so the same opt-out is read more than once.
 */
async function recordOptOuts(changedAt: ReadonlyMap<string, Date>, report: OptOutPullReport, deps: ConsentSyncDeps): Promise<void> {
  const { consent, links } = deps;
  report.contacts += changedAt.size;
  const patients = await links.patientsOf([...changedAt.keys()]);
  report.unlinked += changedAt.size - patients.size;
  if (patients.size === 0) return;
  const current = await consent.currentMany([...new Set(patients.values())]);
  const channelWide = new Map(current.filter((r) => r.purpose === CHANNEL_WIDE && r.channel === 'email').map((r) => [r.patientId, r]));
  const done = new Set<string>();
  const changes: AuthorizationChange[] = [];
  for (const [contactId, patientId] of patients) {
    const key = String(patientId);
    const newest = channelWide.get(key);
    if (done.has(key) || newest?.status === 'revoked' || (newest && newest.recordedAt.getTime() >= changedAt.get(contactId)!.getTime())) {
      report.alreadyOptedOut += 1;
      continue;
    }
    done.add(key);
    changes.push({ patientId, purpose: CHANNEL_WIDE, channel: 'email', status: 'revoked', source: 'crm', sourceRef: `salesforce/Contact/${contactId}` });
  }
  await consent.record(changes, salesforceActor);
  report.recorded += changes.length;
}
