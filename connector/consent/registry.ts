// The HIPAA authorization registry: append-only history, the dispatch-time gate (single and batch), and change listeners.
import { createHash } from 'node:crypto';
import { reveal, phi, type Phi } from '../../fhir/phi.js';
import type { AuditLog, PatientRef } from '../audit/audit-log.js';
import { fail } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher, SealContext } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';
import { decide, type AuthorizationDecision, type CurrentAuthorization } from './gate.js';
import { followAuthorizationHistory, type HistoryFollower, type HistoryFollowerOptions } from './history-follower.js';
import {
  CHANNEL_WIDE,
  isChannel,
  isPurpose,
  purposeModels,
  sourceList,
  statusList,
  type AuthorizationSource,
  type AuthorizationStatus,
  type Channel,
  type Purpose,
  type RecordPurpose,
} from './purposes.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'nextIds',
  'insertEvents',
  'gateOne',
  'gateMany',
  'currentForPatients',
  'history',
  'historyPage',
  'patientsPage',
  'importedVersions',
  'sealedById',
]);

/** Who made a change: a user (with role) or a system actor (`sync`, `unsubscribe`). */
export interface Actor {
  name: string;
  role: string;
}

/** One change to append: a grant (active), a revocation, an expiry, or a channel-wide opt-out / opt-in (purpose '*'). */
export interface AuthorizationChange {
  patientId: PatientRef;
  purpose: RecordPurpose;
  channel: Channel;
  status: AuthorizationStatus;
  /** When the patient signed or agreed (defaults to now for grants). A grant is not valid before it. */
  grantedAt?: Date | null;
  /** The end of the authorization; at and after it a grant counts as expired. */
  expiresAt?: Date | null;
  source: AuthorizationSource;
  /** The source's own id: `<endpoint>|Consent/<id>`, a form number, a CRM record id, an unsubscribe token id. */
  sourceRef?: string | null;
  /** The version of the authorization text the patient agreed to (required for marketing grants). */
  textVersion?: string | null;
  /** The signed form or the FHIR Consent as received: sealed, and its SHA-256 kept as the evidence hash. */
  evidence?: Phi<string> | null;
  /** The evidence hash when the evidence itself is kept elsewhere. */
  evidenceHash?: Buffer | null;
  /** A free-text reason (may hold PHI): sealed. */
  reason?: Phi<string> | null;
}

/** A history row as read back. Sealed columns stay sealed until `openEvidence` / `openReason`. */
export interface AuthorizationRecord {
  id: string;
  patientId: string;
  purpose: RecordPurpose;
  channel: Channel;
  status: AuthorizationStatus;
  grantedAt: Date | null;
  expiresAt: Date | null;
  recordedAt: Date;
  source: AuthorizationSource;
  sourceRef: string | null;
  textVersion: string | null;
  /** SHA-256 of the evidence, hex. */
  evidenceHash: string | null;
  recordedBy: string;
  hasEvidence: boolean;
  hasReason: boolean;
}

/** What listeners hear after a change committed. */
export interface ConsentChange {
  authorizationId: string;
  patientId: string;
  purpose: RecordPurpose;
  channel: Channel;
  status: AuthorizationStatus;
  source: AuthorizationSource;
  recordedAt: Date;
}

export type ConsentListener = (changes: readonly ConsentChange[]) => void | Promise<void>;

export interface ConsentRegistryDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  clock?: () => Date;
  log?: Log;
}

interface EventRow {
  id: string;
  patient_id: string;
  purpose: string;
  channel: string;
  status: AuthorizationStatus;
  granted_at: Date | null;
  expires_at: Date | null;
  recorded_at: Date;
  source: AuthorizationSource;
  source_ref: string | null;
  text_version: string | null;
  evidence_hash: Uint8Array | null;
  evidence_sealed: Uint8Array | null;
  reason_sealed: Uint8Array | null;
  recorded_by: string;
}

interface GateRow {
  patient_id?: string;
  id: string;
  purpose: string;
  status: AuthorizationStatus;
  granted_at: Date | null;
  expires_at: Date | null;
  text_version: string | null;
}

const evidenceAt = (id: string): SealContext => ({ table: 'authorization_events', column: 'evidence_sealed', rowId: id });
const reasonAt = (id: string): SealContext => ({ table: 'authorization_events', column: 'reason_sealed', rowId: id });

/** The store's patient ids are positive bigints; anything else is refused before it reaches SQL. */
export function patientKey(patientId: PatientRef): string {
  const text = String(patientId);
  if (!/^[1-9][0-9]{0,18}$/.test(text)) throw fail('BAD_REQUEST', 'patient id must be a positive integer', { field: 'patientId' });
  return text;
}

export function evidenceHashOf(evidence: string | Uint8Array): Buffer {
  return createHash('sha256').update(evidence).digest();
}

const auditActions: Record<AuthorizationStatus, string> = { active: 'consent.grant', revoked: 'consent.revoke', expired: 'consent.expire' };

export class ConsentRegistry {
  private readonly db: Db;
  private readonly cipher: FieldCipher;
  private readonly audit: AuditLog;
  private readonly clock: () => Date;
  private readonly log: Log;
  private readonly listeners = new Set<ConsentListener>();

  constructor(deps: ConsentRegistryDeps) {
    this.db = deps.db;
    this.cipher = deps.cipher;
    this.audit = deps.audit;
    this.clock = deps.clock ?? (() => new Date());
    this.log = deps.log ?? silentLog;
  }

  /** Subscribes to committed changes (segment index, outbox); returns the unsubscribe function. */
  onConsentChanged(listener: ConsentListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Follows the history from its end as it stands now: the changes every process records from here on (listeners hear
   * only this process's). The segment index uses it to see an opt-out taken by the server's unsubscribe page.
   */
  followHistory(options?: HistoryFollowerOptions): Promise<HistoryFollower> {
    return followAuthorizationHistory(this.db, options);
  }

  /**
   * Appends changes in one transaction with their audit rows, then tells the listeners. The newest row of a
   * (patient, channel, purpose) is its current state, so an opt-out from any source applies to the next gate call.
   */
  async record(changes: readonly AuthorizationChange[], actor: Actor): Promise<AuthorizationRecord[]> {
    if (changes.length === 0) return [];
    const now = this.clock();
    const checked = changes.map((c) => this.check(c, now));
    const records = await this.db.transaction(async (tx) => {
      const ids = (await tx.query<{ id: string }>(q.nextIds, [checked.length])).map((r) => String(r.id));
      const rows = checked.map((c, i) => this.toRow(ids[i]!, c, now, actor));
      await tx.query(q.insertEvents, [
        rows.map((r) => r.id),
        rows.map((r) => r.patient_id),
        rows.map((r) => r.purpose),
        rows.map((r) => r.channel),
        rows.map((r) => r.status),
        rows.map((r) => r.granted_at),
        rows.map((r) => r.expires_at),
        rows.map((r) => r.recorded_at),
        rows.map((r) => r.source),
        rows.map((r) => r.source_ref),
        rows.map((r) => r.text_version),
        rows.map((r) => r.evidence_hash),
        rows.map((r) => r.evidence_sealed),
        rows.map((r) => r.reason_sealed),
        rows.map((r) => r.recorded_by),
      ]);
      await this.audit.append(
        rows.map((r) => ({
          actor: actor.name,
          role: actor.role,
          action: r.purpose === CHANNEL_WIDE ? (r.status === 'revoked' ? 'consent.opt-out' : 'consent.opt-in') : auditActions[r.status],
          purpose: r.purpose === CHANNEL_WIDE ? null : r.purpose,
          patientId: r.patient_id,
          entity: `authorization/${r.id}`,
          at: now,
        })),
        tx,
      );
      return rows.map(toRecord);
    });
    await this.notify(
      records.map((r) => ({
        authorizationId: r.id,
        patientId: r.patientId,
        purpose: r.purpose,
        channel: r.channel,
        status: r.status,
        source: r.source,
        recordedAt: r.recordedAt,
      })),
    );
    return records;
  }

  /** Records a grant of one purpose (marketing needs `textVersion`). */
  async grant(change: Omit<AuthorizationChange, 'status'> & { purpose: Purpose }, actor: Actor): Promise<AuthorizationRecord> {
    return (await this.record([{ ...change, status: 'active' }], actor))[0]!;
  }

  /** Revokes one purpose; other purposes on the channel are untouched. */
  async revoke(change: Omit<AuthorizationChange, 'status'> & { purpose: Purpose }, actor: Actor): Promise<AuthorizationRecord> {
    return (await this.record([{ ...change, status: 'revoked' }], actor))[0]!;
  }

  /** Marks one purpose's authorization expired now (the gate also expires grants by their `expiresAt`). */
  async expire(change: Omit<AuthorizationChange, 'status'> & { purpose: Purpose }, actor: Actor): Promise<AuthorizationRecord> {
    return (await this.record([{ ...change, status: 'expired' }], actor))[0]!;
  }

  /** A channel opt-out (unsubscribe link, CRM flag, admin): every purpose on the channel stops, reminders included. */
  async optOut(change: Omit<AuthorizationChange, 'status' | 'purpose'>, actor: Actor): Promise<AuthorizationRecord> {
    return (await this.record([{ ...change, purpose: CHANNEL_WIDE, status: 'revoked' }], actor))[0]!;
  }

  /** Lifts a channel opt-out. Grants nothing by itself: marketing still needs its own active authorization. */
  async optIn(change: Omit<AuthorizationChange, 'status' | 'purpose'>, actor: Actor): Promise<AuthorizationRecord> {
    return (await this.record([{ ...change, purpose: CHANNEL_WIDE, status: 'active' }], actor))[0]!;
  }

  /** The gate delivery calls at dispatch: two index probes, no history scan. */
  async isAllowed(patientId: PatientRef, purpose: Purpose, channel: Channel = 'email', at: Date = this.clock()): Promise<AuthorizationDecision> {
    checkGateArgs(purpose, channel);
    const rows = await this.db.query<GateRow>(q.gateOne, [patientKey(patientId), channel, purpose]);
    return decideRows(purpose, at, rows);
  }

  /** The gate for many patients at once (one statement); the map is keyed by the patient id as text. */
  async isAllowedMany(
    patientIds: readonly PatientRef[],
    purpose: Purpose,
    channel: Channel = 'email',
    at: Date = this.clock(),
  ): Promise<Map<string, AuthorizationDecision>> {
    checkGateArgs(purpose, channel);
    const keys = [...new Set(patientIds.map(patientKey))];
    const byPatient = new Map<string, GateRow[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < keys.length; i += 5000) {
      const rows = await this.db.query<GateRow>(q.gateMany, [keys.slice(i, i + 5000), channel, purpose]);
      for (const r of rows) byPatient.get(String(r.patient_id))!.push(r);
    }
    return new Map([...byPatient].map(([k, rows]) => [k, decideRows(purpose, at, rows)]));
  }

  /** The newest row of every (channel, purpose) the patient has. */
  async current(patientId: PatientRef): Promise<AuthorizationRecord[]> {
    return (await this.db.query<EventRow>(q.currentForPatients, [[patientKey(patientId)]])).map(toRecord);
  }

  /** The current rows of many patients (export). */
  async currentMany(patientIds: readonly PatientRef[]): Promise<AuthorizationRecord[]> {
    if (patientIds.length === 0) return [];
    return (await this.db.query<EventRow>(q.currentForPatients, [patientIds.map(patientKey)])).map(toRecord);
  }

  /** Every row of one patient, oldest first. */
  async history(patientId: PatientRef): Promise<AuthorizationRecord[]> {
    return (await this.db.query<EventRow>(q.history, [patientKey(patientId)])).map(toRecord);
  }

  /** Every row of every patient in id order, page by page (full-history export). */
  async *allHistory(pageSize = 1000): AsyncIterable<AuthorizationRecord> {
    let after = '0';
    for (;;) {
      const page = await this.db.query<EventRow>(q.historyPage, [after, pageSize]);
      for (const r of page) yield toRecord(r);
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.id;
    }
  }

  /** The ids of patients with any row, ascending, page by page. */
  async *patients(pageSize = 1000): AsyncIterable<string[]> {
    let after = '0';
    for (;;) {
      const page = (await this.db.query<{ patient_id: string | number }>(q.patientsPage, [after, pageSize])).map((r) =>
        String(r.patient_id),
      );
      if (page.length) yield page;
      if (page.length < pageSize) return;
      after = page[page.length - 1]!;
    }
  }

  /** The FHIR Consent versions already recorded under these source refs: `ref|patient|channel|purpose` → evidence hash of the newest. */
  async importedVersions(sourceRefs: readonly string[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    if (sourceRefs.length === 0) return out;
    const rows = await this.db.query<{ source_ref: string; patient_id: string; purpose: string; channel: string; evidence_hash: Uint8Array | null }>(
      q.importedVersions,
      [[...new Set(sourceRefs)]],
    );
    for (const r of rows) {
      out.set(importKey(r.source_ref, String(r.patient_id), r.channel, r.purpose), r.evidence_hash ? asBuffer(r.evidence_hash).toString('hex') : null);
    }
    return out;
  }

  /** Opens a row's sealed evidence (PHI: the caller audits the read). */
  async openEvidence(record: AuthorizationRecord): Promise<Phi<string> | undefined> {
    const [row] = await this.db.query<Pick<EventRow, 'evidence_sealed'>>(q.sealedById, [record.id]);
    return row?.evidence_sealed ? phi(this.cipher.openText(row.evidence_sealed, evidenceAt(record.id))) : undefined;
  }

  /** Opens a row's sealed free-text reason (PHI: the caller audits the read). */
  async openReason(record: AuthorizationRecord): Promise<Phi<string> | undefined> {
    const [row] = await this.db.query<Pick<EventRow, 'reason_sealed'>>(q.sealedById, [record.id]);
    return row?.reason_sealed ? phi(this.cipher.openText(row.reason_sealed, reasonAt(record.id))) : undefined;
  }

  private check(c: AuthorizationChange, now: Date): AuthorizationChange & { patientKey: string } {
    const key = patientKey(c.patientId);
    if (c.purpose !== CHANNEL_WIDE && !isPurpose(c.purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
    if (!isChannel(c.channel)) throw fail('BAD_REQUEST', 'unknown channel', { field: 'channel' });
    if (!statusList.includes(c.status)) throw fail('BAD_REQUEST', 'status must be active, revoked or expired', { field: 'status' });
    if (!sourceList.includes(c.source)) throw fail('BAD_REQUEST', 'unknown authorization source', { field: 'source' });
    if (c.purpose === CHANNEL_WIDE && c.status === 'expired') {
      throw fail('BAD_REQUEST', 'a channel opt-out is revoked or lifted, never expired', { field: 'status' });
    }
    for (const [field, d] of [['grantedAt', c.grantedAt], ['expiresAt', c.expiresAt]] as const) {
      if (d != null && !(d instanceof Date && Number.isFinite(d.getTime()))) throw fail('BAD_REQUEST', `${field} is not a valid date`, { field });
    }
    if (c.grantedAt && c.expiresAt && c.expiresAt.getTime() <= c.grantedAt.getTime()) {
      throw fail('BAD_REQUEST', 'expiresAt must be after grantedAt', { field: 'expiresAt' });
    }
    if (c.status === 'active' && c.purpose !== CHANNEL_WIDE && purposeModels[c.purpose] === 'authorization' && !c.textVersion?.trim()) {
      throw fail('BAD_REQUEST', 'a marketing authorization needs the version of the authorization text', { field: 'textVersion' });
    }
    if (c.textVersion != null && !/^[A-Za-z0-9._:\/|-]{1,128}$/.test(c.textVersion)) {
      throw fail('BAD_REQUEST', 'textVersion must be a short identifier', { field: 'textVersion' });
    }
    if (c.sourceRef != null && (c.sourceRef.length > 512 || /[\r\n]/.test(c.sourceRef))) {
      throw fail('BAD_REQUEST', 'sourceRef must be a single-line identifier', { field: 'sourceRef' });
    }
    const grantedAt = c.grantedAt ?? (c.status === 'active' ? now : null);
    return { ...c, grantedAt, patientKey: key };
  }

  private toRow(id: string, c: AuthorizationChange & { patientKey: string }, now: Date, actor: Actor): EventRow {
    const evidence = c.evidence == null ? null : reveal(c.evidence);
    return {
      id,
      patient_id: c.patientKey,
      purpose: c.purpose,
      channel: c.channel,
      status: c.status,
      granted_at: c.grantedAt ?? null,
      expires_at: c.expiresAt ?? null,
      recorded_at: now,
      source: c.source,
      source_ref: c.sourceRef ?? null,
      text_version: c.textVersion ?? null,
      evidence_hash: c.evidenceHash ?? (evidence == null ? null : evidenceHashOf(evidence)),
      evidence_sealed: evidence == null ? null : this.cipher.seal(evidence, evidenceAt(id)),
      reason_sealed: c.reason == null ? null : this.cipher.seal(reveal(c.reason), reasonAt(id)),
      recorded_by: actor.name,
    };
  }

  private async notify(changes: readonly ConsentChange[]): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(changes);
      } catch (err) {
        this.log.error({ err, changes: changes.length }, 'consent listener failed');
      }
    }
  }
}

export function importKey(sourceRef: string, patientId: string, channel: string, purpose: string): string {
  return `${sourceRef}\n${patientId}\n${channel}\n${purpose}`;
}

function checkGateArgs(purpose: string, channel: string): void {
  if (!isPurpose(purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
  if (!isChannel(channel)) throw fail('BAD_REQUEST', 'unknown channel', { field: 'channel' });
}

function decideRows(purpose: Purpose, at: Date, rows: readonly GateRow[]): AuthorizationDecision {
  const asCurrent = (r: GateRow | undefined): CurrentAuthorization | undefined =>
    r && { id: String(r.id), status: r.status, grantedAt: r.granted_at, expiresAt: r.expires_at, textVersion: r.text_version };
  return decide(
    purpose,
    at,
    asCurrent(rows.find((r) => r.purpose === purpose)),
    asCurrent(rows.find((r) => r.purpose === CHANNEL_WIDE)),
  );
}

function toRecord(r: EventRow): AuthorizationRecord {
  return {
    id: String(r.id),
    patientId: String(r.patient_id),
    purpose: r.purpose as RecordPurpose,
    channel: r.channel as Channel,
    status: r.status,
    grantedAt: r.granted_at,
    expiresAt: r.expires_at,
    recordedAt: r.recorded_at,
    source: r.source,
    sourceRef: r.source_ref,
    textVersion: r.text_version,
    evidenceHash: r.evidence_hash ? asBuffer(r.evidence_hash).toString('hex') : null,
    recordedBy: r.recorded_by,
    hasEvidence: r.evidence_sealed != null,
    hasReason: r.reason_sealed != null,
  };
}
