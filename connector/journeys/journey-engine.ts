// Runs journeys: enrolls patients when a sync changes their facts (and catches up on writes it did not hear), runs due steps exactly once into the outbox, and applies the exit rules (revocation, opt-out, deceased, withdrawn occurrence).
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { AuthorizationDecision } from '../consent/gate.js';
import type { ConsentChange, ConsentRegistry } from '../consent/registry.js';
import type { EnqueueInput, Outbox } from '../delivery/outbox.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher, SealContext } from '../store/cipher.js';
import { asBuffer, type Db } from '../store/db.js';
import type { StoredFacts } from '../store/facts-repository.js';
import type { SegmentDefinition } from '../segments/definition.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { stepIndexOf } from './journey-definition.js';
import { journeyFromRow, outboxJourneyKey, q, type Journey, type JourneyService } from './journey-service.js';
import { occurrencesOf, type Occurrence } from './triggers.js';

export interface JourneyEngineDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  facts: {
    readFacts(ids: readonly number[]): Promise<Map<number, PatientFacts>>;
    onFactsWritten(listener: (written: readonly StoredFacts[]) => void | Promise<void>): () => void;
    iterateAllFacts(batchSize?: number): AsyncIterable<StoredFacts[]>;
  };
  consent: Pick<ConsentRegistry, 'isAllowedMany' | 'onConsentChanged'>;
  journeys: JourneyService;
  outbox: () => Promise<Pick<Outbox, 'enqueue' | 'cancelQueued'>>;
  /** Segment members now (a live index that has applied every write heard so far). */
  segmentMembers?: (definition: SegmentDefinition) => Promise<number[]>;
  /** Called after messages were queued (wakes the dispatcher). */
  onQueued?: () => void;
  clock?: () => Date;
  log?: Log;
  /** How long a claimed enrollment is held by one scheduler before another may take it (default 5 minutes). */
  leaseMs?: number;
}

/** What one scheduler pass did. */
export interface TickReport {
  /** Patients re-evaluated because their facts were written where this process did not hear it. */
  caughtUp: number;
  /** Enrollments whose due steps ran. */
  ran: number;
  queued: number;
  exited: number;
}

export interface EvaluationReport {
  enrolled: number;
  withdrawn: number;
  exited: number;
}

type Row = Record<string, unknown>;
/** One enrollment's work in a pass. */
interface Plan {
  sends: EnqueueInput[];
  records: Array<{ index: number; outcome: string; key: string | null; at: Date }>;
  end: { kind: 'wait'; index: number; until: Date } | { kind: 'done' } | { kind: 'exit'; reason: string };
}
interface Context {
  anchor: string;
}
const contextAt = (id: string | number): SealContext => ({ table: 'journey_enrollments', column: 'context_sealed', rowId: String(id) });
const hour = 3_600_000;
const toDate = (v: unknown) => (v instanceof Date ? v : new Date(String(v)));

/** The outbox idempotency key of one step for one patient and occurrence: a retry, a rerun or a restart queues it once. */
export const journeyStepKey = (j: Pick<Journey, 'id' | 'revision'>, patientId: number | string, step: string, occurrence: string) =>
  `journey:${j.id}:${j.revision}:${patientId}:${step}:${occurrence}`;

export class JourneyEngine {
  private readonly clock: () => Date;
  private readonly log: Log;
  private readonly offs: Array<() => void> = [];
  private work: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: JourneyEngineDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.log = deps.log ?? silentLog;
  }

  /** Listens to facts writes and consent changes; returns when subscribed. */
  start(): void {
    if (this.offs.length) return;
    this.offs.push(this.deps.facts.onFactsWritten(async (written) => void (await this.serial(() => this.evaluate(written)))));
    this.offs.push(this.deps.consent.onConsentChanged(async (changes) => void (await this.serial(() => this.onConsentChanged(changes)))));
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /** Settles when every change heard so far has been evaluated. */
  settled(): Promise<void> {
    return this.work.then(() => undefined);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.work.then(fn, fn);
    this.work = next.catch((err: unknown) => this.log.warn({ err }, 'journey evaluation failed'));
    return next;
  }

  private blind = (value: string) => this.deps.cipher.blindIndex('journey-occurrence', value).toString('hex').slice(0, 16);

  private async running(): Promise<Journey[]> {
    return (await this.deps.db.query<Row>(q.running)).map(journeyFromRow);
  }

  /**
   * Evaluates every running journey's trigger for patients whose facts were written: new occurrences enroll (once: the
   * store's unique key), occurrences that went away before their anchor are withdrawn, the deceased exit everything.
   */
  async evaluate(written: readonly StoredFacts[], only?: string): Promise<EvaluationReport> {
    const report: EvaluationReport = { enrolled: 0, withdrawn: 0, exited: 0 };
    if (written.length === 0) return report;
    const now = this.clock();
    const deceased = written.filter((w) => w.facts.deceased).map((w) => w.id);
    if (deceased.length) report.exited += await this.exitPatients(deceased, 'deceased', () => true);
    const alive = written.filter((w) => !w.facts.deceased);
    if (alive.length === 0) return report;
    for (const j of await this.running()) {
      if (only && j.id !== only) continue;
      if (!(await this.deps.journeys.approvalHolds(j))) {
        await this.deps.journeys.voidApproval(j);
        continue;
      }
      if (j.trigger.kind === 'segment-entry') {
        report.enrolled += await this.segmentEntries(j, alive.map((w) => w.id), now);
        continue;
      }
      const derived = new Map<number, Occurrence[]>();
      for (const w of alive) derived.set(w.id, occurrencesOf(j.trigger, w.facts, now, this.blind));
      report.enrolled += await this.enroll(j, derived, now);
      report.withdrawn += await this.withdrawGone(j, derived, now);
    }
    if (report.enrolled || report.withdrawn || report.exited) this.log.info({ patients: written.length, ...report }, 'journeys evaluated');
    return report;
  }

  private async enroll(j: Journey, derived: Map<number, Occurrence[]>, now: Date): Promise<number> {
    const ids = [...derived.keys()].filter((id) => derived.get(id)!.length > 0);
    if (ids.length === 0) return 0;
    const existing = new Set(
      (await this.deps.db.query<{ patient_id: unknown; occurrence: string }>(q.existingOccurrences, [j.id, j.revision, ids])).map((r) => `${String(r.patient_id)}\n${r.occurrence}`),
    );
    const fresh: Array<{ patientId: number; o: Occurrence }> = [];
    for (const id of ids) for (const o of derived.get(id)!) if (!existing.has(`${id}\n${o.key}`)) fresh.push({ patientId: id, o });
    if (fresh.length === 0) return 0;
    const allocated = await this.deps.db.query<{ id: unknown }>(q.allocateEnrollmentIds, [fresh.length]);
    const rowIds = allocated.map((r) => String(r.id));
    const rows = await this.deps.db.query(q.insertEnrollments, [
      j.id,
      j.revision,
      now,
      rowIds,
      fresh.map((f) => f.patientId),
      fresh.map((f) => f.o.key),
      fresh.map((f) => f.o.dueAt.toISOString()),
      fresh.map((f, i) => this.deps.cipher.seal(JSON.stringify({ anchor: f.o.anchor.toISOString() } satisfies Context), contextAt(rowIds[i]!))),
    ]);
    return rows.length;
  }

  /** Withdraws waiting enrollments whose occurrence is gone (cancelled, moved, stopped, measured) and whose anchor is still ahead. */
  private async withdrawGone(j: Journey, derived: Map<number, Occurrence[]>, now: Date): Promise<number> {
    const waiting = await this.deps.db.query<Row>(q.waitingOfPatients, [[...derived.keys()]]);
    const gone: Row[] = [];
    for (const e of waiting) {
      if (String(e.journey_id) !== j.id || Number(e.revision) !== j.revision) continue;
      const occurrences = derived.get(Number(e.patient_id)) ?? [];
      const o = occurrences.find((x) => x.key === e.occurrence);
      if (o) continue;
      if (String(e.occurrence).startsWith('encounter:') || String(e.occurrence).startsWith('segment:')) continue;
      if (new Date(this.contextOf(e).anchor).getTime() <= now.getTime()) continue;
      gone.push(e);
    }
    return this.exitRows(gone, 'withdrawn');
  }

  private async segmentEntries(j: Journey, ids: number[], now: Date): Promise<number> {
    if (!this.deps.segmentMembers || j.trigger.kind !== 'segment-entry') return 0;
    const [row] = await this.deps.db.query<Row>(q.byId, [j.id]);
    if (Number(row?.segment_baseline_revision ?? 0) !== j.revision) {
      // Approved where no engine listened: take the baseline now; these writes count from the next one.
      await this.takeBaseline(j);
      return 0;
    }
    const version = await this.deps.journeys.segmentVersionOf(j.trigger.segmentId);
    const members = await this.deps.segmentMembers(version.definition);
    const set = new Set(members);
    const inside = ids.filter((id) => set.has(id));
    const outside = ids.filter((id) => !set.has(id));
    if (outside.length) await this.deps.db.query(q.leaveSegment, [j.id, outside]);
    if (inside.length === 0) return 0;
    const entered = await this.deps.db.query<{ patient_id: unknown; entries: number }>(q.enterSegment, [j.id, inside]);
    const derived = new Map<number, Occurrence[]>();
    for (const r of entered) derived.set(Number(r.patient_id), [{ key: `segment:${r.entries}`, anchor: now, dueAt: now, withdrawable: false }]);
    return this.enroll(j, derived, now);
  }

  /**
   * A version was approved: a segment-entry journey takes the segment's members now as its baseline (they did not newly
   * enter); any other journey evaluates the patients already in the store once (appointments booked before it existed).
   */
  async activate(j: Journey): Promise<EvaluationReport> {
    if (j.trigger.kind === 'segment-entry') {
      await this.serial(() => this.takeBaseline(j));
      return { enrolled: 0, withdrawn: 0, exited: 0 };
    }
    return this.serial(() => this.evaluateAll(j.id));
  }

  private async takeBaseline(j: Journey): Promise<void> {
    if (!this.deps.segmentMembers || j.trigger.kind !== 'segment-entry') return;
    const version = await this.deps.journeys.segmentVersionOf(j.trigger.segmentId);
    const members = await this.deps.segmentMembers(version.definition);
    await this.deps.db.query(q.resetSegmentMembers, [j.id]);
    for (let i = 0; i < members.length; i += 10_000) await this.deps.db.query(q.seedSegmentMembers, [j.id, members.slice(i, i + 10_000)]);
    await this.deps.db.query(q.setBaseline, [j.id, j.revision]);
  }

  /** Evaluates every patient in the store once (for one journey, or all). */
  async evaluateAll(journeyId?: string): Promise<EvaluationReport> {
    const total: EvaluationReport = { enrolled: 0, withdrawn: 0, exited: 0 };
    for await (const page of this.deps.facts.iterateAllFacts(1000)) {
      const r = await this.evaluate(page, journeyId);
      total.enrolled += r.enrolled;
      total.withdrawn += r.withdrawn;
      total.exited += r.exited;
    }
    return total;
  }

  private contextOf(e: Row): Context {
    return JSON.parse(this.deps.cipher.openText(asBuffer(e.context_sealed as Uint8Array), contextAt(String(e.id)))) as Context;
  }

  /** Exits waiting enrollments and withdraws what they had queued. */
  private async exitRows(rows: readonly Row[], reason: string): Promise<number> {
    if (rows.length === 0) return 0;
    const exited = await this.deps.db.query<{ id: unknown; journey_id: unknown; patient_id: unknown }>(q.exitEnrollments, [rows.map((r) => r.id), reason, this.clock()]);
    const outbox = await this.deps.outbox();
    const pairs = new Set(exited.map((e) => `${String(e.journey_id)}\n${String(e.patient_id)}`));
    for (const pair of pairs) {
      const [journeyId, patientId] = pair.split('\n') as [string, string];
      await outbox.cancelQueued({ campaignId: outboxJourneyKey(journeyId), patientId }, `journey exit: ${reason}`);
    }
    if (exited.length) {
      await this.deps.audit.append(
        exited.map((e) => ({ actor: 'journeys', role: 'system', action: 'journey.exit', patientId: String(e.patient_id), entity: `journey/${String(e.journey_id)}`, at: this.clock() })),
      );
    }
    return exited.length;
  }

  private async exitPatients(ids: readonly number[], reason: string, journeyMatches: (purpose: string) => boolean): Promise<number> {
    const waiting = await this.deps.db.query<Row>(q.waitingOfPatients, [ids]);
    return this.exitRows(waiting.filter((e) => journeyMatches(String(e.purpose))), reason);
  }

  /**
   * The consent exit rules, at once: a channel opt-out exits every journey; a revoked or expired authorization exits the
   * journeys of that purpose (marketing journeys on a marketing revocation).
   */
  async onConsentChanged(changes: readonly ConsentChange[]): Promise<number> {
    let exited = 0;
    for (const c of changes) {
      if (c.status === 'active') continue;
      const id = Number(c.patientId);
      if (!Number.isSafeInteger(id)) continue;
      if (c.purpose === '*') exited += await this.exitPatients([id], 'channel-opted-out', () => true);
      else exited += await this.exitPatients([id], c.status === 'expired' ? 'expired' : 'revoked', (purpose) => purpose === c.purpose);
    }
    return exited;
  }

  /** Re-evaluates patients written since the watermark (another process's sync, or a crash before the hook ran). */
  async catchUp(pageSize = 1000): Promise<number> {
    const [mark] = await this.deps.db.query<{ patients_updated_at: unknown; patient_id: unknown }>(q.watermark);
    let after = mark ? { at: toDate(mark.patients_updated_at), id: String(mark.patient_id) } : { at: new Date(0), id: '0' };
    let n = 0;
    for (;;) {
      const rows = await this.deps.db.query<{ id: unknown; updated_at: unknown }>(q.patientsUpdatedSince, [after.at, after.id, pageSize]);
      if (rows.length === 0) break;
      const facts = await this.deps.facts.readFacts(rows.map((r) => Number(r.id)));
      await this.evaluate([...facts].map(([id, f]) => ({ id, facts: f })));
      n += rows.length;
      const last = rows[rows.length - 1]!;
      after = { at: toDate(last.updated_at), id: String(last.id) };
      await this.deps.db.query(q.setWatermark, [after.at, after.id]);
      if (rows.length < pageSize) break;
    }
    return n;
  }

  /** One scheduler pass: catch up on unheard writes, then run the enrollments that are due (indexed on due_at). */
  async tick(limit = 500): Promise<TickReport> {
    const caughtUp = await this.serial(() => this.catchUp());
    const run = await this.runDue(limit);
    return { caughtUp, ...run };
  }

  /**
   * Runs every due enrollment of an active journey until it waits, exits or ends. Each claimed batch is read at once
   * (facts, step runs, the consent gate per journey), planned, then written in order: outbox inserts first (idempotent
   * keys), then the step log, then the enrollments. A pass that dies anywhere leaves its lease to expire and the next
   * pass repeats it without queuing anything twice.
   */
  async runDue(limit = 500): Promise<{ ran: number; queued: number; exited: number }> {
    const out = { ran: 0, queued: 0, exited: 0 };
    for (;;) {
      const now = this.clock();
      const claimed = await this.deps.db.query<Row>(q.claimDue, [now, limit, new Date(now.getTime() + (this.deps.leaseMs ?? 300_000))]);
      if (claimed.length === 0) break;
      const journeys = new Map((await this.running()).map((j) => [j.id, j]));
      const holds = new Map<string, boolean>();
      for (const id of new Set(claimed.map((e) => String(e.journey_id)))) {
        const j = journeys.get(id);
        if (!j) continue;
        const ok = await this.deps.journeys.approvalHolds(j);
        if (!ok) await this.deps.journeys.voidApproval(j);
        holds.set(id, ok);
      }
      const patientIds = [...new Set(claimed.map((e) => Number(e.patient_id)))];
      const facts = await this.deps.facts.readFacts(patientIds);
      const runs = new Map<string, Map<number, { outcome: string; at: Date }>>();
      for (const r of await this.deps.db.query<{ enrollment_id: unknown; step_index: number; outcome: string; at: unknown }>(q.stepRunsOfMany, [claimed.map((e) => e.id)])) {
        const key = String(r.enrollment_id);
        if (!runs.has(key)) runs.set(key, new Map());
        runs.get(key)!.set(Number(r.step_index), { outcome: r.outcome, at: toDate(r.at) });
      }
      const decisions = new Map<string, Map<string, AuthorizationDecision>>();
      for (const j of journeys.values()) {
        const ids = [...new Set(claimed.filter((e) => String(e.journey_id) === j.id).map((e) => Number(e.patient_id)))];
        if (ids.length) decisions.set(j.id, await this.deps.consent.isAllowedMany(ids, j.purpose, 'email', now));
      }

      const plans: Array<{ e: Row; j: Journey; plan: Plan }> = [];
      for (const e of claimed) {
        const j = journeys.get(String(e.journey_id));
        if (!j) continue;
        const patientId = Number(e.patient_id);
        const plan = await this.plan(j, e, {
          approved: holds.get(j.id) ?? false,
          facts: facts.get(patientId),
          runs: runs.get(String(e.id)) ?? new Map(),
          decision: decisions.get(j.id)?.get(String(patientId)),
          now,
        });
        plans.push({ e, j, plan });
      }

      const items = plans.flatMap((p) => p.plan.sends);
      const outbox = items.length ? await this.deps.outbox() : undefined;
      const queued = outbox ? await outbox.enqueue(items) : 0;
      const records = plans.flatMap((p) => p.plan.records.map((r) => ({ ...r, e: p.e, j: p.j })));
      if (records.length) {
        await this.deps.db.query(q.recordSteps, [
          records.map((r) => r.e.id), records.map((r) => r.j.id), records.map((r) => r.index), records.map((r) => r.j.steps[r.index]!.name),
          records.map((r) => r.outcome), records.map((r) => r.key), records.map((r) => r.at),
        ]);
      }
      const waits = plans.filter((p) => p.plan.end.kind === 'wait');
      if (waits.length) {
        await this.deps.db.query(q.advanceMany, [
          waits.map((p) => p.e.id),
          waits.map((p) => (p.plan.end as { index: number }).index),
          waits.map((p) => (p.plan.end as { until: Date }).until.toISOString()),
          now,
        ]);
      }
      const done = plans.filter((p) => p.plan.end.kind === 'done');
      if (done.length) await this.deps.db.query(q.finishDone, [done.map((p) => p.e.id), now]);
      const exits = new Map<string, Row[]>();
      for (const p of plans) if (p.plan.end.kind === 'exit') exits.set(p.plan.end.reason, [...(exits.get(p.plan.end.reason) ?? []), p.e]);
      for (const [reason, rows] of exits) out.exited += await this.exitRows(rows, reason);

      const sentKeys = new Set(items.map((i) => i.idempotencyKey));
      const audited: AuditEntry[] = plans.flatMap((p) =>
        p.plan.sends.filter((i) => sentKeys.has(i.idempotencyKey)).map(() => ({
          actor: 'journeys', role: 'system', action: 'journey.send', purpose: p.j.purpose, patientId: String(p.e.patient_id), entity: `journey/${p.j.id}`, at: now,
        })),
      );
      // Audit only when something new went in (a rerun after a crash queues nothing and audits nothing).
      if (queued > 0 && audited.length) await this.deps.audit.append(audited);
      out.ran += plans.length;
      out.queued += queued;
      if (claimed.length < limit) break;
    }
    if (out.queued > 0) this.deps.onQueued?.();
    return out;
  }

  /** What one enrollment does now: the messages it queues, the steps it records, and where it ends (waiting, done, exited). */
  private async plan(
    j: Journey,
    e: Row,
    s: { approved: boolean; facts: PatientFacts | undefined; runs: Map<number, { outcome: string; at: Date }>; decision: AuthorizationDecision | undefined; now: Date },
  ): Promise<Plan> {
    const plan: Plan = { sends: [], records: [], end: { kind: 'done' } };
    const { now } = s;
    const patientId = Number(e.patient_id);
    const occurrence = String(e.occurrence);
    const dueAt = toDate(e.was_due);
    const exit = (reason: string, index?: number): Plan => {
      if (index !== undefined) plan.records.push({ index, outcome: `exited:${reason}`, key: null, at: now });
      plan.end = { kind: 'exit', reason };
      return plan;
    };
    if (!s.approved) return exit('approval-void');
    const facts = s.facts;
    if (!facts) return exit('unknown-patient');
    if (facts.deceased) return exit('deceased');
    let lastKey: string | undefined;
    let i = Number(e.step_index);
    while (i >= 0 && i < j.steps.length) {
      const step = j.steps[i]!;
      const prior = s.runs.get(i);
      if (step.kind === 'send') {
        if (!prior) {
          if (j.trigger.kind === 'appointment-booked' && new Date(this.contextOf(e).anchor).getTime() <= now.getTime()) return exit('expired', i);
          const decision = s.decision ?? { allowed: false, reason: 'no-authorization' };
          if (!decision.allowed) return exit(decision.reason, i);
          if (!facts.email) return exit('no-email', i);
          const key = journeyStepKey(j, patientId, step.name, occurrence);
          plan.sends.push({
            campaignId: outboxJourneyKey(j.id),
            templateVersion: step.templateVersionId,
            patientId: String(patientId),
            purpose: j.purpose,
            deliveryMode: j.deliveryMode,
            idempotencyKey: key,
            notBefore: dueAt.getTime() < now.getTime() ? dueAt : now,
          });
          plan.records.push({ index: i, outcome: 'queued', key, at: now });
          lastKey = key;
        }
        i++;
      } else if (step.kind === 'wait') {
        const since = prior?.at ?? now;
        if (!prior) plan.records.push({ index: i, outcome: 'waited', key: null, at: now });
        const until = new Date(since.getTime() + step.hours * hour);
        if (until.getTime() > now.getTime()) {
          plan.end = { kind: 'wait', index: i + 1, until };
          return plan;
        }
        i++;
      } else if (step.kind === 'branch') {
        let taken = prior?.outcome;
        if (!taken) {
          taken = (await this.branchHolds(String(e.id), step.on, facts, now, lastKey)) ? 'then' : 'else';
          plan.records.push({ index: i, outcome: taken, key: null, at: now });
        }
        i = stepIndexOf(j.steps, taken === 'then' ? step.then : step.else);
      } else {
        if (!prior) plan.records.push({ index: i, outcome: 'exited', key: null, at: now });
        break;
      }
    }
    return plan;
  }

  private async branchHolds(enrollmentId: string, on: 'opened' | 'clicked' | 'booked', facts: PatientFacts, now: Date, sentThisPass?: string): Promise<boolean> {
    if (on === 'booked') return facts.appointments.some((a) => a.status === 'booked' && a.start !== undefined && Date.parse(a.start) > now.getTime());
    const key = sentThisPass ?? (await this.deps.db.query<{ idempotency_key: string }>(q.lastSendKey, [enrollmentId]))[0]?.idempotency_key;
    if (!key) return false;
    const kinds = new Set((await this.deps.db.query<{ kind: string }>(q.trackedKinds, [key])).map((r) => r.kind));
    return on === 'opened' ? kinds.has('open') || kinds.has('click') : kinds.has('click');
  }
}
