// Contact <-> patient links: found by a Contact field holding the FHIR Patient id or by the e-mail blind index, stored sealed.
import type { Connection } from '@salesforce/core';
import type { FieldCipher, SealContext } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';
import { indexKinds, type PatientId } from '../store/facts-repository.js';
import { parseSalesforceDate, queryPages, soqlDateTime } from './org-api.js';
import type { SyncSettings } from './sync-settings.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'unlinkPatientsOrContacts',
  'insertLinks',
  'linksByPatients',
  'linksByContacts',
  'countLinks',
  'sources',
  'patientsByEmailIndex',
  'patientsBySourceIndex',
  'setCrmIndexes',
]);

const contactAt = (patientId: PatientId | string): SealContext => ({ table: 'salesforce_contact_links', column: 'contact_sealed', rowId: String(patientId) });

export interface LinkReport {
  /** Contacts read from Salesforce. */
  contacts: number;
  linked: number;
  /** Contacts whose e-mail or id matches no patient. */
  unmatched: number;
  /** Contacts whose e-mail matches more than one patient: left unlinked. */
  ambiguous: number;
  /** The newest SystemModstamp read (the next pull starts there). */
  watermark: Date | null;
}

interface ContactRow {
  Id: string;
  SystemModstamp: string;
  Email?: string | null;
  [field: string]: unknown;
}

export class ContactLinks {
  constructor(
    private readonly db: Db,
    private readonly cipher: FieldCipher,
  ) {}

  /** The CRM blind index: the same one the patients table and the API lookup use. */
  contactIndex(contactId: string): Buffer {
    return this.cipher.blindIndex(indexKinds.crm, contactId);
  }

  /** Reads Contacts changed since `since` and links those that match exactly one patient. */
  async pull(conn: Connection, settings: SyncSettings, since: Date | null, clock: () => Date): Promise<LinkReport> {
    const byExternalId = settings.matchBy === 'external-id';
    const field = byExternalId ? settings.externalIdField : 'Email';
    const soql =
      `SELECT Id, ${field}, SystemModstamp FROM Contact WHERE ${field} != null` +
      (since ? ` AND SystemModstamp >= ${soqlDateTime(since)}` : '') +
      ' ORDER BY SystemModstamp, Id';
    const sources = byExternalId
      ? settings.matchSource
        ? [settings.matchSource]
        : (await this.db.query<{ source: string }>(q.sources)).map((r) => r.source)
      : [];
    const report: LinkReport = { contacts: 0, linked: 0, unmatched: 0, ambiguous: 0, watermark: since };
    for await (const page of queryPages<ContactRow>(conn, soql)) {
      const values: Array<{ contactId: string; value: string }> = [];
      for (const contact of page) {
        report.contacts += 1;
        const modified = parseSalesforceDate(contact.SystemModstamp);
        if (!report.watermark || modified > report.watermark) report.watermark = modified;
        const value = contact[field];
        if (typeof value === 'string' && value.trim()) values.push({ contactId: contact.Id, value });
      }
      const matches = byExternalId ? await this.byPatientIds(sources, values.map((v) => v.value)) : await this.byEmails(values.map((v) => v.value));
      const found: Array<{ patientId: PatientId; contactId: string }> = [];
      values.forEach((v, i) => {
        const ids = matches[i]!;
        if (ids.length === 1) found.push({ patientId: ids[0]!, contactId: v.contactId });
        else if (ids.length === 0) report.unmatched += 1;
        else report.ambiguous += 1;
      });
      report.linked += await this.link(found, byExternalId ? 'external-id' : 'email', clock());
    }
    return report;
  }

  /** The patients of each e-mail, by the store's e-mail blind index (one statement a page). */
  private async byEmails(emails: readonly string[]): Promise<PatientId[][]> {
    const keys = emails.map((e) => this.cipher.blindIndex(indexKinds.email, e).toString('hex'));
    const rows = await this.db.query<{ id: string | number; email_bidx: Uint8Array }>(q.patientsByEmailIndex, [[...new Set(keys)].map((k) => Buffer.from(k, 'hex'))]);
    const byKey = new Map<string, PatientId[]>();
    for (const r of rows) {
      const k = asBuffer(r.email_bidx).toString('hex');
      byKey.set(k, [...(byKey.get(k) ?? []), Number(r.id)]);
    }
    return keys.map((k) => byKey.get(k) ?? []);
  }

  /** The patients of each FHIR Patient id (`123` or `Patient/123`) across the sources. */
  private async byPatientIds(sources: readonly string[], values: readonly string[]): Promise<PatientId[][]> {
    const out = values.map((): PatientId[] => []);
    for (const source of sources) {
      const keys = values.map((v) => this.cipher.blindIndex(indexKinds.sourcePatient, `${source}\n${v.trim().replace(/^Patient\//, '')}`).toString('hex'));
      const rows = await this.db.query<{ id: string | number; source_patient_bidx: Uint8Array }>(q.patientsBySourceIndex, [
        source,
        [...new Set(keys)].map((k) => Buffer.from(k, 'hex')),
      ]);
      const byKey = new Map(rows.map((r) => [asBuffer(r.source_patient_bidx).toString('hex'), Number(r.id)]));
      keys.forEach((k, i) => {
        const id = byKey.get(k);
        if (id !== undefined) out[i]!.push(id);
      });
    }
    return out;
  }

  /** Stores links (a patient has one Contact, a Contact one patient: newer links replace older) and the CRM index. */
  async link(links: ReadonlyArray<{ patientId: PatientId; contactId: string }>, matchedBy: 'external-id' | 'email', at: Date): Promise<number> {
    const unique = new Map<PatientId, string>();
    const seenContacts = new Set<string>();
    for (const l of links) {
      if (seenContacts.has(l.contactId)) continue;
      seenContacts.add(l.contactId);
      unique.set(l.patientId, l.contactId);
    }
    if (unique.size === 0) return 0;
    const patientIds = [...unique.keys()];
    const contactIds = [...unique.values()];
    const indexes = contactIds.map((c) => this.contactIndex(c));
    const displaced = await this.db.transaction(async (tx) => {
      const before = await tx.query<{ patient_id: string | number }>(q.linksByContacts, [indexes]);
      await tx.query(q.unlinkPatientsOrContacts, [patientIds, indexes]);
      await tx.query(q.insertLinks, [
        patientIds,
        indexes,
        patientIds.map((p, i) => this.cipher.seal(contactIds[i]!, contactAt(p))),
        patientIds.map(() => matchedBy),
        patientIds.map(() => at),
      ]);
      return before.map((r) => Number(r.patient_id)).filter((p) => !unique.has(p));
    });
    // The patients table's CRM index is what the API looks patients up by (FactsRepository.findByCrmId).
    await this.db.query(q.setCrmIndexes, [
      [...displaced, ...patientIds],
      [...displaced.map(() => null), ...indexes],
    ]);
    return unique.size;
  }

  /** The Contact ids of these patients (absent when not linked). */
  async contactsOf(patientIds: readonly PatientId[]): Promise<Map<PatientId, string>> {
    const out = new Map<PatientId, string>();
    for (let i = 0; i < patientIds.length; i += 5000) {
      const rows = await this.db.query<{ patient_id: string | number; contact_sealed: Uint8Array }>(q.linksByPatients, [patientIds.slice(i, i + 5000)]);
      for (const r of rows) out.set(Number(r.patient_id), this.cipher.openText(asBuffer(r.contact_sealed), contactAt(r.patient_id)));
    }
    return out;
  }

  /** The patients linked to these Contact ids. */
  async patientsOf(contactIds: readonly string[]): Promise<Map<string, PatientId>> {
    const byIndex = new Map(contactIds.map((c) => [this.contactIndex(c).toString('hex'), c]));
    const out = new Map<string, PatientId>();
    const indexes = [...byIndex.keys()].map((h) => Buffer.from(h, 'hex'));
    for (let i = 0; i < indexes.length; i += 5000) {
      const rows = await this.db.query<{ patient_id: string | number; contact_bidx: Uint8Array }>(q.linksByContacts, [indexes.slice(i, i + 5000)]);
      for (const r of rows) {
        const contact = byIndex.get(asBuffer(r.contact_bidx).toString('hex'));
        if (contact) out.set(contact, Number(r.patient_id));
      }
    }
    return out;
  }

  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: number | string }>(q.countLinks);
    return Number(row?.n ?? 0);
  }
}
