// Journeys' lifecycle: create and edit (draft), clinician approval of one version bound by a hash (any edit voids it), pause, resume, and per-step counts.
import type { AuditLog } from '../audit/audit-log.js';
import { bindingHash } from '../campaigns/approval-hash.js';
import { requireLiveSegment, requireLiveTemplate } from '../campaigns/live-content.js';
import type { TemplateStore } from '../compose/template-store.js';
import { isPurpose, type Purpose } from '../consent/purposes.js';
import type { Outbox } from '../delivery/outbox.js';
import { deliveryModes, type DeliveryMode } from '../delivery/tls-policy.js';
import { fail } from '../errors.js';
import type { Db, Queryable } from '../store/db.js';
import { loadQueries } from '../store/db.js';
import type { SegmentRepository } from '../segments/segment-repository.js';
import { authorize, type Session } from '../users/authorize.js';
import type { Operation } from '../users/permissions.js';
import { parseJourneyDefinition, stableJson, type JourneyStep, type JourneyTrigger } from './journey-definition.js';

export const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertJourney', 'byId', 'lockById', 'list', 'running', 'updateDefinition', 'setApproved', 'setStatus', 'existingOccurrences',
  'allocateEnrollmentIds', 'insertEnrollments', 'waitingOfPatients', 'claimDue',
  'exitEnrollments', 'exitStaleRevisions', 'lastSendKey', 'trackedKinds', 'stepCounts', 'enrollmentCounts',
  'waitingAt', 'enterSegment', 'leaveSegment', 'watermark', 'setWatermark', 'patientsUpdatedSince',
  'latestSegmentVersion', 'setBaseline', 'resetSegmentMembers', 'seedSegmentMembers', 'latestTemplateVersion', 'voidApproval', 'stepRunsOfMany', 'recordSteps', 'advanceMany', 'finishDone',
] as const);

export const journeyStatuses = ['draft', 'active', 'paused'] as const;
export type JourneyStatus = (typeof journeyStatuses)[number];

export interface Journey {
  id: string;
  name: string;
  status: JourneyStatus;
  purpose: Purpose;
  deliveryMode: DeliveryMode;
  trigger: JourneyTrigger;
  steps: JourneyStep[];
  /** The version: every edit bumps it, and an approval is of one revision. */
  revision: number;
  approvalHash: string | null;
  approvedBy: string | null;
  approvedAt: Date | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface JourneyInput {
  name: string;
  purpose: string;
  deliveryMode?: DeliveryMode;
  trigger: unknown;
  steps: unknown;
}

/** Per-step counts: what each step did (queued, skipped, waited, branched, exited) and who waits before it. */
export interface JourneyCounts {
  journey: Journey;
  steps: Array<{ index: number; name: string; kind: JourneyStep['kind']; waiting: number; outcomes: Record<string, number> }>;
  enrollments: { waiting: number; done: number; exited: Record<string, number> };
}

export interface JourneyServiceDeps {
  db: Db;
  audit: AuditLog;
  templates: Pick<TemplateStore, 'getVersion'>;
  segmentVersions: Pick<SegmentRepository, 'getVersion'>;
  outbox: () => Promise<Pick<Outbox, 'cancelQueued'>>;
  /** Called once a version is approved (the engine enrolls patients already in the store, or takes a segment's baseline). */
  onApproved?: (journey: Journey) => Promise<unknown>;
  clock?: () => Date;
}

type Row = Record<string, unknown>;
const toDate = (v: unknown) => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
const namePattern = /^[\p{L}\p{N}][\p{L}\p{N} ,._:/()&+'#-]{0,199}$/u;

/** The outbox's campaign key of a journey: its messages are cancelled and counted by it. */
export const outboxJourneyKey = (id: string | number) => `journey/${id}`;

export function journeyFromRow(r: Row): Journey {
  return {
    id: String(r.id),
    name: r.name as string,
    status: r.status as JourneyStatus,
    purpose: r.purpose as Purpose,
    deliveryMode: r.delivery_mode as DeliveryMode,
    trigger: json(r.trigger_def) as JourneyTrigger,
    steps: json(r.steps) as JourneyStep[],
    revision: Number(r.revision),
    approvalHash: (r.approval_hash as string | null) ?? null,
    approvedBy: (r.approved_by as string | null) ?? null,
    approvedAt: toDate(r.approved_at),
    createdBy: r.created_by as string,
    createdAt: toDate(r.created_at)!,
    updatedAt: toDate(r.updated_at)!,
  };
}

export class JourneyService {
  private readonly clock: () => Date;

  constructor(private readonly deps: JourneyServiceDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Sessions expire in wall-clock time; the injected clock is the journeys' own time. */
  private allow(session: Session | null | undefined, operation: Operation): Session {
    return authorize(session, operation);
  }

  private async row(id: string, tx: Queryable = this.deps.db, lock = false): Promise<Row> {
    if (!/^[1-9][0-9]{0,17}$/.test(id)) throw fail('NOT_FOUND', 'no such journey', { field: 'id' });
    const [row] = await tx.query<Row>(lock ? q.lockById : q.byId, [id]);
    if (!row) throw fail('NOT_FOUND', 'no such journey', { field: 'id' });
    return row;
  }

  private async validate(input: JourneyInput) {
    const name = input.name.trim();
    if (!namePattern.test(name)) throw fail('BAD_REQUEST', 'journey name must be 1-200 letters, digits, spaces or punctuation', { field: 'name' });
    if (!isPurpose(input.purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
    const mode = input.deliveryMode ?? 'tls-or-escrow';
    if (!(deliveryModes as readonly string[]).includes(mode)) throw fail('BAD_REQUEST', 'unknown delivery mode', { field: 'deliveryMode' });
    const { trigger, steps } = parseJourneyDefinition(input.trigger, input.steps);
    for (const [i, step] of steps.entries()) {
      if (step.kind !== 'send') continue;
      const template = await this.deps.templates.getVersion(step.templateVersionId).catch(() => {
        throw fail('NOT_FOUND', 'template version not found', { field: `steps.${i}.templateVersionId` });
      });
      if (!template.deliveryModes.includes(mode)) {
        throw fail('DELIVERY_MODE_NOT_ALLOWED', `step ${step.name} needs delivery mode ${template.deliveryModes.join(' or ')}, not ${mode}`, { field: 'deliveryMode' });
      }
    }
    await this.requireLive(trigger, steps);
    return { name, purpose: input.purpose, mode, trigger, steps };
  }

  /**
   * New work names only live content, as campaigns do: a journey whose send steps or segment-entry trigger use an
   * archived template or segment is neither saved nor approved (ARCHIVED, the field names the step or the trigger).
   */
  private async requireLive(trigger: JourneyTrigger, steps: readonly JourneyStep[]): Promise<void> {
    for (const [i, step] of steps.entries()) {
      if (step.kind === 'send') await requireLiveTemplate(this.deps.db, step.templateVersionId, `steps.${i}.templateVersionId`);
    }
    if (trigger.kind === 'segment-entry') await requireLiveSegment(this.deps.db, (await this.segmentVersionOf(trigger.segmentId)).versionId, 'trigger.segmentId');
  }

  /** The latest version id of a template (API and CLI callers name templates, journeys keep versions). */
  async latestTemplateVersion(templateId: string | number, field = 'templateId'): Promise<number> {
    const id = String(templateId);
    const [row] = /^[1-9][0-9]{0,17}$/.test(id) ? await this.deps.db.query<{ id: unknown }>(q.latestTemplateVersion, [id]) : [];
    if (!row) throw fail('NOT_FOUND', 'template not found', { field });
    return Number(row.id);
  }

  /** The latest version of a segment (a segment-entry journey follows what the approval bound). */
  async segmentVersionOf(segmentId: number) {
    const [row] = await this.deps.db.query<{ id: unknown }>(q.latestSegmentVersion, [segmentId]);
    if (!row) throw fail('NOT_FOUND', 'segment not found', { field: 'trigger.segmentId' });
    return this.deps.segmentVersions.getVersion(Number(row.id));
  }

  /**
   * What an approval binds, canonical: trigger, every step with the content hash and merge tags of its template version,
   * the segment's definition for a segment-entry trigger, delivery mode and purpose. The hash is the campaigns' binding.
   */
  async approvalCanonical(j: Journey): Promise<string> {
    const steps = [];
    for (const s of j.steps) {
      if (s.kind !== 'send') {
        steps.push(['step', stableJson(s)]);
        continue;
      }
      const t = await this.deps.templates.getVersion(s.templateVersionId);
      steps.push(['send', s.name, t.versionId, t.contentHash, [...new Set(t.mergeTags)].sort()]);
    }
    const segment = j.trigger.kind === 'segment-entry' ? await this.segmentVersionOf(j.trigger.segmentId) : undefined;
    return JSON.stringify([
      'journey-approval/1',
      ['journey', j.id, j.revision],
      ['trigger', stableJson(j.trigger), segment ? [segment.versionId, segment.definitionHash] : null],
      ['steps', steps],
      ['delivery-mode', j.deliveryMode],
      ['purpose', j.purpose],
    ]);
  }

  async approvalHashOf(j: Journey): Promise<string> {
    return bindingHash(await this.approvalCanonical(j));
  }

  /** True when the journey's stored approval still matches it as it stands (template and segment versions included). */
  async approvalHolds(j: Journey): Promise<boolean> {
    return j.approvalHash !== null && (await this.approvalHashOf(j)) === j.approvalHash;
  }

  private audit(tx: Queryable | undefined, who: { username: string; role: string }, action: string, j: Row, at: Date, outcome: 'success' | 'failure' = 'success') {
    return this.deps.audit.append({ actor: who.username, role: who.role, action, purpose: j.purpose as string, entity: `journey/${String(j.id)}`, outcome, at }, tx);
  }

  async create(session: Session | null | undefined, input: JourneyInput): Promise<Journey> {
    const who = this.allow(session, 'journeys.write');
    const v = await this.validate(input);
    const at = this.clock();
    return this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.insertJourney, [v.name, v.purpose, v.mode, JSON.stringify(v.trigger), JSON.stringify(v.steps), who.username, at]);
      await this.audit(tx, who, 'journey.create', row!, at);
      return journeyFromRow(row!);
    });
  }

  /** Any edit makes a new version: the approval is void, the journey a draft, and its queued messages and waiting patients stop. */
  async update(session: Session | null | undefined, id: string, patch: Partial<JourneyInput>): Promise<Journey> {
    const who = this.allow(session, 'journeys.write');
    const current = journeyFromRow(await this.row(id));
    const v = await this.validate({
      name: patch.name ?? current.name,
      purpose: patch.purpose ?? current.purpose,
      deliveryMode: patch.deliveryMode ?? current.deliveryMode,
      trigger: patch.trigger ?? current.trigger,
      steps: patch.steps ?? current.steps,
    });
    const at = this.clock();
    const next = await this.deps.db.transaction(async (tx) => {
      await this.row(id, tx, true);
      const [row] = await tx.query<Row>(q.updateDefinition, [id, v.name, v.purpose, v.mode, JSON.stringify(v.trigger), JSON.stringify(v.steps), at]);
      await tx.query(q.exitStaleRevisions, [id, row!.revision, at]);
      await this.audit(tx, who, 'journey.edit', row!, at);
      if (current.approvalHash) await this.audit(tx, who, 'journey.void', row!, at);
      return journeyFromRow(row!);
    });
    await (await this.deps.outbox()).cancelQueued({ campaignId: outboxJourneyKey(id) }, 'journey edited: approval voided');
    return next;
  }

  /** A clinician approves this version; the journey starts running (status active). Archived content since the draft is refused. */
  async approve(session: Session | null | undefined, id: string, expectedRevision?: number): Promise<Journey> {
    const who = this.allow(session, 'journeys.approve');
    const before = journeyFromRow(await this.row(id));
    if (before.status !== 'draft') throw fail('CONFLICT', `a ${before.status} journey is already approved`);
    if (expectedRevision !== undefined && expectedRevision !== before.revision) throw fail('APPROVAL_VOID', 'the journey changed since it was reviewed');
    await this.requireLive(before.trigger, before.steps);
    const hash = await this.approvalHashOf(before);
    const at = this.clock();
    const approved = await this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.setApproved, [id, hash, who.username, at, before.revision]);
      if (!row) throw fail('APPROVAL_VOID', 'the journey changed while it was being approved');
      await this.audit(tx, who, 'journey.approve', row, at);
      return journeyFromRow(row);
    });
    await this.deps.onApproved?.(approved);
    return approved;
  }

  /** Stops sending: waiting patients stay enrolled but no step runs, and queued messages are withdrawn. */
  async pause(session: Session | null | undefined, id: string): Promise<Journey & { cancelled: number }> {
    const who = this.allow(session, 'journeys.activate');
    const next = await this.transition(id, 'active', 'paused', who, 'journey.pause');
    const cancelled = await (await this.deps.outbox()).cancelQueued({ campaignId: outboxJourneyKey(id) }, 'journey paused');
    return { ...next, cancelled };
  }

  /** Runs again, only while the approval still matches the journey as it stands. */
  async resume(session: Session | null | undefined, id: string): Promise<Journey> {
    const who = this.allow(session, 'journeys.activate');
    const j = journeyFromRow(await this.row(id));
    if (j.status !== 'paused') throw fail('CONFLICT', `a ${j.status} journey cannot be resumed`);
    if (!(await this.approvalHolds(j))) throw fail('APPROVAL_VOID', 'the approval does not match the journey as it stands');
    return this.transition(id, 'paused', 'active', who, 'journey.resume');
  }

  private async transition(id: string, from: JourneyStatus, to: JourneyStatus, who: Session, action: string): Promise<Journey> {
    const at = this.clock();
    return this.deps.db.transaction(async (tx) => {
      const r = await this.row(id, tx, true);
      if (r.status !== from) throw fail('CONFLICT', `this needs a ${from} journey; it is ${String(r.status)}`);
      const [row] = await tx.query<Row>(q.setStatus, [id, to, at]);
      await this.audit(tx, who, action, row!, at);
      return journeyFromRow(row!);
    });
  }

  /**
   * The approval no longer matches what the journey would send (a segment-entry journey's segment got a new version):
   * the journey is a draft again, its queued messages are withdrawn, and a clinician must approve it anew.
   */
  async voidApproval(j: Journey): Promise<boolean> {
    if (!j.approvalHash) return false;
    const at = this.clock();
    const voided = await this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.voidApproval, [j.id, j.approvalHash, at]);
      if (row) await this.audit(tx, { username: 'journeys', role: 'system' }, 'journey.void', row, at, 'failure');
      return Boolean(row);
    });
    if (voided) await (await this.deps.outbox()).cancelQueued({ campaignId: outboxJourneyKey(j.id) }, 'journey approval void');
    return voided;
  }

  async get(session: Session | null | undefined, id: string): Promise<Journey> {
    this.allow(session, 'journeys.read');
    return journeyFromRow(await this.row(id));
  }

  async list(session: Session | null | undefined): Promise<Journey[]> {
    this.allow(session, 'journeys.read');
    return (await this.deps.db.query<Row>(q.list)).map(journeyFromRow);
  }

  /** Per-step counts of the journey (counts only, never a patient). */
  async counts(session: Session | null | undefined, id: string): Promise<JourneyCounts> {
    this.allow(session, 'journeys.read');
    const journey = journeyFromRow(await this.row(id));
    const runs = await this.deps.db.query<{ step_index: number; outcome: string; n: number }>(q.stepCounts, [id]);
    const waiting = await this.deps.db.query<{ step_index: number; n: number }>(q.waitingAt, [id]);
    const states = await this.deps.db.query<{ state: string; reason: string; n: number }>(q.enrollmentCounts, [id]);
    const enrollments: JourneyCounts['enrollments'] = { waiting: 0, done: 0, exited: {} };
    for (const s of states) {
      if (s.state === 'waiting') enrollments.waiting += Number(s.n);
      else if (s.state === 'done') enrollments.done += Number(s.n);
      else enrollments.exited[s.reason || 'exited'] = (enrollments.exited[s.reason || 'exited'] ?? 0) + Number(s.n);
    }
    return {
      journey,
      steps: journey.steps.map((s, index) => ({
        index,
        name: s.name,
        kind: s.kind,
        waiting: Number(waiting.find((w) => Number(w.step_index) === index)?.n ?? 0),
        outcomes: Object.fromEntries(runs.filter((r) => Number(r.step_index) === index).map((r) => [r.outcome, Number(r.n)])),
      })),
      enrollments,
    };
  }
}
