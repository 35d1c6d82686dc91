// The patients store: sealed PatientFacts with blind-index look-ups, the FHIR quarantine and sync state (a FactsSink).
import type { Consent } from 'fhir/r4.js';
import type { FactsSink, QuarantineItem, SyncState } from '../../fhir/facts-sink.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { asOutreachError, fail } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher, SealContext } from './cipher.js';
import { asBuffer, loadQueries, type Db } from './db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'patientIdsBySource',
  'allocatePatientIds',
  'insertPatients',
  'storePatientFacts',
  'factsBySourceIds',
  'factsByIds',
  'factsPageFirst',
  'factsPageAfter',
  'idBySource',
  'idsByEmail',
  'idsByMrn',
  'idsByCrm',
  'setCrmIndex',
  'countPatients',
  'insertQuarantine',
  'listQuarantine',
  'countQuarantine',
  'getSyncState',
  'setSyncState',
] as const);

/** The internal patient id (patients.id) every other module refers to. */
export type PatientId = number;

export interface StoredFacts {
  id: PatientId;
  facts: PatientFacts;
}

/** Receives validated FHIR Consent resources (the authorization registry implements it). */
export interface ConsentSink {
  writeConsents(source: string, consents: readonly Consent[]): Promise<void>;
}

/** Called after a batch of facts committed: the internal ids and the facts written (for incremental segment indexes). */
export type FactsListener = (written: readonly StoredFacts[]) => void | Promise<void>;

/** A quarantine row as listed back: no resource id, only its type. */
export interface QuarantineRecord {
  id: number;
  endpoint: string;
  resourceType?: string;
  path: string;
  reason: string;
  file?: string;
  line?: number;
  at: string;
}

export interface FactsRepositoryOptions {
  log?: Log;
  consentSink?: ConsentSink;
}

/** Blind-index kinds (the domain separation of the HMAC). */
export const indexKinds = {
  sourcePatient: 'source-patient',
  email: 'email',
  mrn: 'mrn',
  crm: 'crm',
  resource: 'resource',
} as const;

const factsAt = (id: PatientId | string): SealContext => ({ table: 'patients', column: 'facts', rowId: String(id) });

export class FactsRepository implements FactsSink {
  private readonly log: Log;
  private consentSink: ConsentSink | undefined;
  private readonly listeners = new Set<FactsListener>();

  constructor(
    private readonly db: Db,
    private readonly cipher: FieldCipher,
    options: FactsRepositoryOptions = {},
  ) {
    this.log = options.log ?? silentLog;
    this.consentSink = options.consentSink;
  }

  /** Wires the authorization registry after construction (it may itself need this repository). */
  setConsentSink(sink: ConsentSink | undefined): void {
    this.consentSink = sink;
  }

  /** Subscribes to committed writes; returns the unsubscribe function. A failing listener is logged, never rethrown. */
  onFactsWritten(listener: FactsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private sourceIndex(source: string, patientId: string): Buffer {
    return this.cipher.blindIndex(indexKinds.sourcePatient, `${source}\n${patientId}`);
  }

  private openFacts(id: PatientId | string, sealed: Uint8Array): PatientFacts {
    return JSON.parse(this.cipher.openText(asBuffer(sealed), factsAt(id))) as PatientFacts;
  }

  async loadFacts(source: string, patientIds: readonly string[]): Promise<Map<string, PatientFacts>> {
    const out = new Map<string, PatientFacts>();
    if (patientIds.length === 0) return out;
    const byIndex = new Map<string, string>();
    for (const pid of patientIds) byIndex.set(this.sourceIndex(source, pid).toString('hex'), pid);
    const rows = await this.db.query<{ id: number | string; source_patient_bidx: Uint8Array; facts: Uint8Array }>(q.factsBySourceIds, [
      source,
      [...byIndex.keys()].map((h) => Buffer.from(h, 'hex')),
    ]);
    for (const r of rows) {
      const pid = byIndex.get(asBuffer(r.source_patient_bidx).toString('hex'));
      if (pid !== undefined) out.set(pid, this.openFacts(r.id, r.facts));
    }
    return out;
  }

  /**
   * Inserts or replaces a batch of facts in one transaction, one write per patient: find the ids of known patients,
   * take ids for new ones from the identity sequence, seal every patient's facts under its row id, then one multi-row
   * INSERT and one multi-row UPDATE. A patient a concurrent writer inserted meanwhile is updated on the next pass.
   * The same patient twice in a batch: last wins. Returns the internal ids in batch order.
   */
  async upsertFacts(batch: readonly PatientFacts[]): Promise<PatientId[]> {
    if (batch.length === 0) return [];
    const unique = new Map<string, { facts: PatientFacts; key: Buffer }>();
    for (const facts of batch) {
      if (!facts.source || !facts.patientId) throw fail('BAD_REQUEST', 'patient facts need a source and a patientId');
      const key = this.sourceIndex(facts.source, facts.patientId);
      const k = `${facts.source}\n${key.toString('hex')}`;
      unique.delete(k);
      unique.set(k, { facts, key });
    }
    const written = await this.db.transaction(async (tx) => {
      const out: StoredFacts[] = [];
      let pending = [...unique.values()];
      for (let pass = 0; pending.length > 0; pass++) {
        if (pass === 3) throw fail('CONFLICT', 'patients kept changing under a concurrent sync; retry the batch');
        const known = await tx.query<{ id: number | string; source: string; source_patient_bidx: Uint8Array }>(q.patientIdsBySource, [
          pending.map((e) => e.facts.source),
          pending.map((e) => e.key),
        ]);
        const idOf = new Map(known.map((r) => [`${r.source}\n${asBuffer(r.source_patient_bidx).toString('hex')}`, Number(r.id)]));
        const fresh = new Set(pending.filter((e) => !idOf.has(`${e.facts.source}\n${e.key.toString('hex')}`)));
        if (fresh.size > 0) {
          const ids = await tx.query<{ id: number | string }>(q.allocatePatientIds, [fresh.size]);
          [...fresh].forEach((e, i) => idOf.set(`${e.facts.source}\n${e.key.toString('hex')}`, Number(ids[i]!.id)));
        }
        const rows = pending.map((e) => {
          const id = idOf.get(`${e.facts.source}\n${e.key.toString('hex')}`)!;
          return {
            entry: e,
            id,
            sealed: this.cipher.seal(JSON.stringify(e.facts), factsAt(id)),
            email: e.facts.email ? this.cipher.blindIndex(indexKinds.email, e.facts.email) : null,
            mrn: e.facts.mrn ? this.cipher.blindIndex(indexKinds.mrn, e.facts.mrn) : null,
          };
        });
        const inserts = rows.filter((r) => fresh.has(r.entry));
        const updates = rows.filter((r) => !fresh.has(r.entry));
        const conflicted = new Set<number>(inserts.map((r) => r.id));
        if (inserts.length > 0) {
          const inserted = await tx.query<{ id: number | string }>(q.insertPatients, [
            inserts.map((r) => r.id),
            inserts.map((r) => r.entry.facts.source),
            inserts.map((r) => r.entry.key),
            inserts.map((r) => r.sealed),
            inserts.map((r) => r.email),
            inserts.map((r) => r.mrn),
          ]);
          for (const r of inserted) conflicted.delete(Number(r.id));
        }
        if (updates.length > 0) {
          await tx.query(q.storePatientFacts, [updates.map((r) => r.id), updates.map((r) => r.sealed), updates.map((r) => r.email), updates.map((r) => r.mrn)]);
        }
        for (const r of rows) if (!conflicted.has(r.id)) out.push({ id: r.id, facts: r.entry.facts });
        // Inserted by someone else since we looked: their row id differs, so seal again for it on the next pass.
        pending = inserts.filter((r) => conflicted.has(r.id)).map((r) => r.entry);
      }
      return out;
    });
    this.log.debug({ patients: written.length }, 'facts sealed and stored');
    await this.notify(written);
    const idByKey = new Map(written.map((w) => [`${w.facts.source}\n${w.facts.patientId}`, w.id]));
    return batch.map((f) => idByKey.get(`${f.source}\n${f.patientId}`)!);
  }

  /** The FactsSink write: `upsertFacts` without the ids. */
  async writeFacts(batch: readonly PatientFacts[]): Promise<void> {
    await this.upsertFacts(batch);
  }

  private async notify(written: readonly StoredFacts[]): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(written);
      } catch (err) {
        this.log.warn({ err: asOutreachError(err), patients: written.length }, 'a facts listener failed');
      }
    }
  }

  async writeConsents(source: string, consents: readonly Consent[]): Promise<void> {
    if (consents.length === 0) return;
    if (!this.consentSink) {
      // Without a registry there is no authorization to find, so the consent gate denies marketing for everyone.
      this.log.warn({ source, consents: consents.length }, 'no authorization registry wired: consents not recorded');
      return;
    }
    await this.consentSink.writeConsents(source, consents);
  }

  async quarantine(items: readonly QuarantineItem[]): Promise<void> {
    if (items.length === 0) return;
    await this.db.query(q.insertQuarantine, [
      items.map((i) => i.endpoint),
      items.map((i) => i.resourceType ?? null),
      items.map((i) =>
        i.resourceId ? this.cipher.blindIndex(indexKinds.resource, `${i.endpoint}\n${i.resourceType ?? ''}/${i.resourceId}`) : null,
      ),
      items.map((i) => i.path),
      items.map((i) => i.reason),
      items.map((i) => i.file ?? null),
      items.map((i) => i.line ?? null),
      items.map((i) => i.at),
    ]);
    this.log.info({ quarantined: items.length }, 'resources quarantined');
  }

  async listQuarantine(options: { endpoint?: string; limit?: number } = {}): Promise<QuarantineRecord[]> {
    const rows = await this.db.query<{
      id: number | string;
      endpoint: string;
      resource_type: string | null;
      path: string;
      reason: string;
      file: string | null;
      line: number | null;
      at: Date | string;
    }>(q.listQuarantine, [options.endpoint ?? null, options.limit ?? 100]);
    return rows.map((r) => ({
      id: Number(r.id),
      endpoint: r.endpoint,
      ...(r.resource_type ? { resourceType: r.resource_type } : {}),
      path: r.path,
      reason: r.reason,
      ...(r.file ? { file: r.file } : {}),
      ...(r.line !== null ? { line: r.line } : {}),
      at: new Date(r.at).toISOString(),
    }));
  }

  async countQuarantine(endpoint?: string): Promise<number> {
    const [row] = await this.db.query<{ n: number | string }>(q.countQuarantine, [endpoint ?? null]);
    return Number(row?.n ?? 0);
  }

  async getSyncState(endpoint: string): Promise<SyncState | undefined> {
    const [row] = await this.db.query<{ endpoint: string; since: string | null; mode: 'search' | 'bulk' | null; updated_at: Date | string }>(
      q.getSyncState,
      [endpoint],
    );
    if (!row) return undefined;
    return {
      endpoint: row.endpoint,
      ...(row.since !== null ? { since: row.since } : {}),
      ...(row.mode !== null ? { mode: row.mode } : {}),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }

  async setSyncState(state: SyncState): Promise<void> {
    await this.db.query(q.setSyncState, [state.endpoint, state.since ?? null, state.mode ?? null, state.updatedAt]);
  }

  /** Opens the facts of these internal ids; unknown ids are absent from the map. */
  async readFacts(ids: readonly PatientId[]): Promise<Map<PatientId, PatientFacts>> {
    const out = new Map<PatientId, PatientFacts>();
    if (ids.length === 0) return out;
    const rows = await this.db.query<{ id: number | string; facts: Uint8Array }>(q.factsByIds, [ids]);
    for (const r of rows) out.set(Number(r.id), this.openFacts(r.id, r.facts));
    return out;
  }

  /** Every patient's facts in id order, a page at a time (builds the segment index at start). */
  async *iterateAllFacts(batchSize = 1000): AsyncGenerator<StoredFacts[]> {
    let after: number | undefined;
    for (;;) {
      const rows =
        after === undefined
          ? await this.db.query<{ id: number | string; facts: Uint8Array }>(q.factsPageFirst, [batchSize])
          : await this.db.query<{ id: number | string; facts: Uint8Array }>(q.factsPageAfter, [after, batchSize]);
      if (rows.length === 0) return;
      yield rows.map((r) => ({ id: Number(r.id), facts: this.openFacts(r.id, r.facts) }));
      after = Number(rows[rows.length - 1]!.id);
      if (rows.length < batchSize) return;
    }
  }

  /** The internal id of a source patient. */
  async idOf(source: string, patientId: string): Promise<PatientId | undefined> {
    const [row] = await this.db.query<{ id: number | string }>(q.idBySource, [source, this.sourceIndex(source, patientId)]);
    return row ? Number(row.id) : undefined;
  }

  /** Patients with this email (case and surrounding space ignored). */
  async findByEmail(email: string): Promise<PatientId[]> {
    const rows = await this.db.query<{ id: number | string }>(q.idsByEmail, [this.cipher.blindIndex(indexKinds.email, email)]);
    return rows.map((r) => Number(r.id));
  }

  /** Patients with this MRN, optionally only from one source endpoint. */
  async findByMrn(mrn: string, source?: string): Promise<PatientId[]> {
    const rows = await this.db.query<{ id: number | string }>(q.idsByMrn, [this.cipher.blindIndex(indexKinds.mrn, mrn), source ?? null]);
    return rows.map((r) => Number(r.id));
  }

  /** Patients linked to this CRM (Salesforce Contact/Lead) id. */
  async findByCrmId(crmId: string): Promise<PatientId[]> {
    const rows = await this.db.query<{ id: number | string }>(q.idsByCrm, [this.cipher.blindIndex(indexKinds.crm, crmId)]);
    return rows.map((r) => Number(r.id));
  }

  /** Links a patient to its CRM record (null unlinks); only the blind index is stored. */
  async setCrmId(id: PatientId, crmId: string | null): Promise<void> {
    const rows = await this.db.query(q.setCrmIndex, [id, crmId === null ? null : this.cipher.blindIndex(indexKinds.crm, crmId)]);
    if (rows.length === 0) throw fail('NOT_FOUND', `patient ${id} not found`);
  }

  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: number | string }>(q.countPatients);
    return Number(row?.n ?? 0);
  }
}
