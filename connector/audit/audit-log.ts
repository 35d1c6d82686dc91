// The append-only, hash-chained audit log: serialised appends (single or batch), a verifier that names the first bad row.
import { fail } from '../errors.js';
import type { FieldCipher } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db, type Queryable } from '../store/db.js';
import { chainHash, genesisHash, headMac, rowMac, type ChainedFields } from './chain.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['lockHead', 'readHead', 'setHead', 'insertRows', 'page', 'search']);

export type AuditOutcome = 'success' | 'denied' | 'failure';
/** The store's internal patient id (bigint), as the store hands it out. */
export type PatientRef = string | number | bigint;

export interface AuditEntry {
  /** Who: a user name, or a system actor such as `sync` or `unsubscribe`. */
  actor: string;
  role: string;
  /** What, as `noun.verb` (`consent.grant`, `campaign.send`, `fhir.sync`, `preview.phi`). */
  action: string;
  /** The purpose of use (`marketing`, `treatment`, `operations`, `administration`). */
  purpose?: string | null;
  /** The patient concerned; stored only as a keyed blind id. */
  patientId?: PatientRef | null;
  /** A PHI-free reference to the object touched (`campaign/12`, `endpoint/epic`). */
  entity?: string | null;
  outcome?: AuditOutcome;
  at?: Date;
}

export interface AuditRecord extends ChainedFields {
  prevHash: string;
  hash: string;
}

export type AuditProblem = 'missing' | 'broken-link' | 'altered' | 'forged-hash' | 'truncated' | 'head-forged';

export type AuditVerification =
  | { ok: true; rows: number; head: { seq: string; hash: string } }
  | { ok: false; rows: number; firstBadSeq: string; problem: AuditProblem; message: string };

export interface AuditSearch {
  patientId?: PatientRef;
  since?: Date;
  until?: Date;
  /** Only actions starting with this prefix (`campaign.`, `consent.`). */
  actionPrefix?: string;
}

export interface AuditLog {
  /** Appends rows in order, in `tx` when given (so they commit with the change they record), else in their own transaction. */
  append(entries: AuditEntry | readonly AuditEntry[], tx?: Queryable): Promise<AuditRecord[]>;
  /** Walks the whole chain and the head; the first problem found names its row. */
  verify(): Promise<AuditVerification>;
  /** Rows matching `filter`, in chain order, read page by page. */
  search(filter?: AuditSearch, pageSize?: number): AsyncIterable<AuditRecord>;
  /** The keyed blind id the log stores for a patient. */
  patientBlind(patientId: PatientRef): string;
  head(): Promise<{ seq: string; hash: string }>;
}

export interface AuditLogDeps {
  db: Db;
  cipher: FieldCipher;
  clock?: () => Date;
}

interface Row {
  seq: string;
  at: Date;
  actor: string;
  role: string;
  action: string;
  purpose: string | null;
  patient_blind: string | null;
  entity: string | null;
  outcome: string;
  prev_hash: Uint8Array;
  hash: Uint8Array;
  mac: Uint8Array;
}

const actionPattern = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;
const wordPattern = /^[a-z][a-z0-9-]*$/;
const entityPattern = /^[a-z][a-z0-9-]*(\/[A-Za-z0-9._:|-]+)*$/;
const actorPattern = /^[A-Za-z0-9._@:-]{1,128}$/;
const outcomes: readonly AuditOutcome[] = ['success', 'denied', 'failure'];

export function createAuditLog({ db, cipher, clock = () => new Date() }: AuditLogDeps): AuditLog {
  const patientBlind = (patientId: PatientRef) => cipher.blindIndex('patient', String(patientId)).toString('hex');

  const fields = (entry: AuditEntry): Omit<ChainedFields, 'seq'> => {
    // The log is read by auditors and exported: its text fields are shape-checked so free text (and PHI) cannot slip in.
    if (!actorPattern.test(entry.actor)) throw fail('BAD_REQUEST', 'audit actor must be a user or system name', { field: 'actor' });
    if (!wordPattern.test(entry.role)) throw fail('BAD_REQUEST', 'audit role must be a lower-case word', { field: 'role' });
    if (!actionPattern.test(entry.action)) throw fail('BAD_REQUEST', 'audit action must look like noun.verb', { field: 'action' });
    if (entry.purpose != null && !wordPattern.test(entry.purpose)) throw fail('BAD_REQUEST', 'audit purpose must be a lower-case word', { field: 'purpose' });
    if (entry.entity != null && !entityPattern.test(entry.entity)) throw fail('BAD_REQUEST', 'audit entity must be a kind/id reference', { field: 'entity' });
    const outcome = entry.outcome ?? 'success';
    if (!outcomes.includes(outcome)) throw fail('BAD_REQUEST', 'audit outcome must be success, denied or failure', { field: 'outcome' });
    return {
      at: new Date((entry.at ?? clock()).getTime()),
      actor: entry.actor,
      role: entry.role,
      action: entry.action,
      purpose: entry.purpose ?? null,
      patientBlind: entry.patientId == null ? null : patientBlind(entry.patientId),
      entity: entry.entity ?? null,
      outcome,
    };
  };

  const appendIn = async (tx: Queryable, entries: readonly AuditEntry[]): Promise<AuditRecord[]> => {
    const prepared = entries.map(fields);
    const [head] = await tx.query<{ seq: string; hash: Uint8Array }>(q.lockHead);
    if (!head) throw fail('INTERNAL', 'audit chain head is missing');
    let seq = BigInt(head.seq);
    let prev = asBuffer(head.hash);
    const out: AuditRecord[] = [];
    const macs: Buffer[] = [];
    for (const f of prepared) {
      seq += 1n;
      const row: ChainedFields = { ...f, seq: seq.toString() };
      const hash = chainHash(prev, row);
      out.push({ ...row, prevHash: prev.toString('hex'), hash: hash.toString('hex') });
      macs.push(rowMac(cipher, hash));
      prev = hash;
    }
    await tx.query(q.insertRows, [
      out.map((r) => r.seq),
      out.map((r) => r.at),
      out.map((r) => r.actor),
      out.map((r) => r.role),
      out.map((r) => r.action),
      out.map((r) => r.purpose),
      out.map((r) => r.patientBlind),
      out.map((r) => r.entity),
      out.map((r) => r.outcome),
      out.map((r) => Buffer.from(r.prevHash, 'hex')),
      out.map((r) => Buffer.from(r.hash, 'hex')),
      macs,
    ]);
    const last = seq.toString();
    await tx.query(q.setHead, [last, prev, headMac(cipher, last, prev)]);
    return out;
  };

  const toRecord = (r: Row): AuditRecord => ({
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    role: r.role,
    action: r.action,
    purpose: r.purpose,
    patientBlind: r.patient_blind,
    entity: r.entity,
    outcome: r.outcome,
    prevHash: asBuffer(r.prev_hash).toString('hex'),
    hash: asBuffer(r.hash).toString('hex'),
  });

  return {
    patientBlind,

    async append(entries, tx) {
      const list = Array.isArray(entries) ? (entries as readonly AuditEntry[]) : [entries as AuditEntry];
      if (list.length === 0) return [];
      return tx ? appendIn(tx, list) : db.transaction((t) => appendIn(t, list));
    },

    async head() {
      const [h] = await db.query<{ seq: string; hash: Uint8Array }>(q.readHead);
      return { seq: h!.seq, hash: asBuffer(h!.hash).toString('hex') };
    },

    async verify() {
      const [head] = await db.query<{ seq: string; hash: Uint8Array; mac: Uint8Array | null }>(q.readHead);
      if (!head) return { ok: false, rows: 0, firstBadSeq: '1', problem: 'head-forged', message: 'the audit chain head is missing' };
      let prev: Buffer = genesisHash;
      let expected = 1n;
      let rows = 0;
      const bad = (seq: bigint | string, problem: AuditProblem, message: string): AuditVerification => ({
        ok: false,
        rows,
        firstBadSeq: seq.toString(),
        problem,
        message,
      });
      for (;;) {
        const page = await db.query<Row>(q.page, [(expected - 1n).toString(), 1000]);
        for (const r of page) {
          const seq = BigInt(r.seq);
          if (seq !== expected) return bad(expected, 'missing', `audit row ${expected} is missing (the next row present is ${seq})`);
          if (!asBuffer(r.prev_hash).equals(prev)) {
            return bad(seq, 'broken-link', `audit row ${seq} does not follow row ${seq - 1n} (reordered, or the row before was changed)`);
          }
          const hash = chainHash(prev, toRecord(r));
          if (!hash.equals(asBuffer(r.hash))) return bad(seq, 'altered', `audit row ${seq} was changed after it was written`);
          if (!rowMac(cipher, hash).equals(asBuffer(r.mac))) {
            return bad(seq, 'forged-hash', `audit row ${seq} was re-hashed without the audit key`);
          }
          prev = hash;
          expected += 1n;
          rows += 1;
        }
        if (page.length < 1000) break;
      }
      const headSeq = BigInt(head.seq);
      const headHash = asBuffer(head.hash);
      const last = expected - 1n;
      if (headSeq === 0n && head.mac === null) {
        if (last === 0n) return { ok: true, rows, head: { seq: '0', hash: headHash.toString('hex') } };
        return bad(1n, 'head-forged', 'the audit chain head was reset while rows exist');
      }
      if (!head.mac || !headMac(cipher, head.seq, headHash).equals(asBuffer(head.mac))) {
        // The head was rewritten (to hide removed rows, typically): what follows the last row present is suspect.
        return bad(last + 1n, 'head-forged', `the audit chain head was rewritten without the audit key: rows after ${last} may have been removed`);
      }
      if (last < headSeq) {
        return bad(last + 1n, 'truncated', `audit rows ${last + 1n} to ${headSeq} are missing: the log ends at row ${last} but the head names row ${headSeq}`);
      }
      if (last > headSeq || !headHash.equals(prev)) {
        return bad(headSeq, 'truncated', `the audit chain head (row ${headSeq}) does not match the last row ${last}`);
      }
      return { ok: true, rows, head: { seq: head.seq, hash: headHash.toString('hex') } };
    },

    search(filter = {}, pageSize = 500) {
      const blind = filter.patientId == null ? null : patientBlind(filter.patientId);
      const prefix = filter.actionPrefix == null ? null : filter.actionPrefix.replace(/[\\%_]/g, '\\$&') + '%';
      return {
        async *[Symbol.asyncIterator]() {
          let after = '0';
          for (;;) {
            const page = await db.query<Row>(q.search, [after, blind, filter.since ?? null, filter.until ?? null, prefix, pageSize]);
            for (const r of page) yield toRecord(r);
            if (page.length < pageSize) return;
            after = page[page.length - 1]!.seq;
          }
        },
      };
    },
  };
}
