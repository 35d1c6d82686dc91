// Campaigns: the lifecycle (draft → pending approval → approved | rejected → scheduled → sending → sent, or cancelled), clinician approval bound by a hash, the send run that materialises and enqueues, and stats.
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthorizationDecision } from '../consent/gate.js';
import { isPurpose, type Purpose } from '../consent/purposes.js';
import type { Outbox } from '../delivery/outbox.js';
import type { Router } from '../delivery/route.js';
import { deliveryModes, type DeliveryMode } from '../delivery/tls-policy.js';
import { fail } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher, SealContext } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db, type Queryable } from '../store/db.js';
import type { TemplateStore, TemplateVersion } from '../compose/template-store.js';
import type { SegmentRepository, SegmentVersion } from '../segments/segment-repository.js';
import type { SegmentService } from '../segments/segment-service.js';
import { authorize, type Session } from '../users/authorize.js';
import type { Operation } from '../users/permissions.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { approvalHash, type ApprovalSubject } from './approval-hash.js';
import { forecastDelivery, type DeliveryForecast } from './forecast.js';
import { requireLiveSegment, requireLiveTemplate } from './live-content.js';
import { addCounts, assessRecipients, noExclusions, type ExclusionCounts } from './recipients.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertCampaign', 'sealContact', 'byId', 'lockById', 'list', 'updateContent', 'setStatus', 'setApproved', 'clearApproval',
  'setScheduled', 'claimDue', 'setSendReport', 'sendingCampaigns', 'markSent', 'insertDecision', 'sealDecisionComment',
  'decisionsOf', 'signDecision', 'latestSegmentVersion', 'latestTemplateVersion', 'approvedForTemplate', 'bouncesOf', 'unsubscribedOf', 'opensOf', 'sendable',
] as const);

export const campaignStatuses = ['draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'sending', 'sent', 'cancelled'] as const;
export type CampaignStatus = (typeof campaignStatuses)[number];

/** How a template is named: a version id, or a template (by id or name) whose latest version is taken. */
export type TemplateRef = { versionId: number } | { templateId: number } | { name: string; version?: number };
/** How an audience is named: a saved segment (version id, segment id for its latest version, or name) or one contact. */
export type AudienceRef =
  | { kind: 'segment'; segmentVersionId: number }
  | { kind: 'segment'; segmentId: number }
  | { kind: 'segment'; name: string; version?: number }
  | { kind: 'contact'; patientId: number }
  | { kind: 'contact'; crmId: string };

export interface CampaignInput {
  name: string;
  template: TemplateRef;
  audience: AudienceRef;
  purpose: string;
  deliveryMode?: DeliveryMode;
}

export interface CampaignDecision {
  decision: 'submitted' | 'approved' | 'rejected' | 'withdrawn' | 'voided' | 'cancelled';
  by: string;
  role: string;
  revision: number;
  approvalHash: string | null;
  comment: string | null;
  at: Date;
  /** The EHR's `Practitioner/<id>` and the launch's `iss`, when the decision was made in the SMART app. */
  practitioner: string | null;
  iss: string | null;
}

export interface Campaign {
  id: string;
  name: string;
  status: CampaignStatus;
  purpose: Purpose;
  deliveryMode: DeliveryMode;
  templateVersionId: number;
  audience: { kind: 'segment'; segmentVersionId: number } | { kind: 'contact'; patientId: number; crmId: string | null };
  revision: number;
  approvalHash: string | null;
  approvalSeq: number;
  approvedBy: string | null;
  approvedAt: Date | null;
  snapshotId: number | null;
  audienceCount: number | null;
  scheduledAt: Date | null;
  sendReport: SendReport | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  sentAt: Date | null;
}

/** What one send run did: members looked at, excluded by reason (counts only), newly queued. */
export interface SendReport {
  members: number;
  queued: number;
  excluded: ExclusionCounts;
  at: string;
}

export interface CampaignStats {
  states: Partial<Record<'queued' | 'sending' | 'held' | 'delivered' | 'notice_sent' | 'failed' | 'cancelled', number>>;
  excluded: ExclusionCounts;
  bounced: number;
  unsubscribed: number;
  opened: number;
}

export interface CampaignServiceDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  templates: Pick<TemplateStore, 'get' | 'getVersion'>;
  segments: Pick<SegmentService, 'snapshotMembership' | 'snapshotMembers' | 'allMembers'>;
  segmentVersions: Pick<SegmentRepository, 'get' | 'getVersion'>;
  facts: { readFacts(ids: readonly number[]): Promise<Map<number, PatientFacts>>; findByCrmId(crmId: string): Promise<number[]> };
  consent: { isAllowedMany(ids: readonly number[], purpose: Purpose, channel?: 'email', at?: Date): Promise<Map<string, AuthorizationDecision>> };
  outbox: Outbox;
  /** The delivery router, for the forecast (probes cached per MX). */
  router?: Router;
  /** Called after messages were queued (wakes the dispatcher). */
  onQueued?: () => void;
  clock?: () => Date;
  log?: Log;
  /** Members materialised per batch at send (default 1000). */
  batchSize?: number;
  /** A send run not finished after this long is taken as dead and run again (default 10 minutes). */
  sendRunLeaseMs?: number;
}

type Row = Record<string, unknown>;
const toDate = (v: unknown) => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const contactAt = (id: string): SealContext => ({ table: 'campaigns', column: 'contact_sealed', rowId: id });
const commentAt = (id: string): SealContext => ({ table: 'campaign_decisions', column: 'comment_sealed', rowId: id });
const namePattern = /^[\p{L}\p{N}][\p{L}\p{N} ,._:/()&+'#-]{0,199}$/u;

/** Which operations move a campaign from which states. */
const editable: readonly CampaignStatus[] = ['draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'sending'];
const cancellable: readonly CampaignStatus[] = ['draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'sending'];
const withApproval: readonly CampaignStatus[] = ['approved', 'scheduled', 'sending'];

/** The outbox's campaign key of a campaign. */
export const outboxCampaignId = (id: string | number) => `campaign/${id}`;

export class CampaignService {
  private readonly clock: () => Date;
  private readonly log: Log;

  constructor(private readonly deps: CampaignServiceDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.log = deps.log ?? silentLog;
  }

  private allow(session: Session | null | undefined, operation: Operation): Session {
    return authorize(session, operation, this.clock());
  }

  private fromRow(r: Row): Campaign {
    const id = String(r.id);
    const contact = r.audience_kind === 'contact';
    return {
      id,
      name: r.name as string,
      status: r.status as CampaignStatus,
      purpose: r.purpose as Purpose,
      deliveryMode: r.delivery_mode as DeliveryMode,
      templateVersionId: Number(r.template_version_id),
      audience: contact
        ? {
            kind: 'contact',
            patientId: Number(r.contact_patient_id),
            crmId: r.contact_sealed ? this.deps.cipher.openText(asBuffer(r.contact_sealed as Uint8Array), contactAt(id)) : null,
          }
        : { kind: 'segment', segmentVersionId: Number(r.segment_version_id) },
      revision: Number(r.revision),
      approvalHash: (r.approval_hash as string | null) ?? null,
      approvalSeq: Number(r.approval_seq),
      approvedBy: (r.approved_by as string | null) ?? null,
      approvedAt: toDate(r.approved_at),
      snapshotId: r.snapshot_id == null ? null : Number(r.snapshot_id),
      audienceCount: r.audience_count == null ? null : Number(r.audience_count),
      scheduledAt: toDate(r.scheduled_at),
      sendReport: (typeof r.send_report === 'string' ? JSON.parse(r.send_report) : r.send_report) as SendReport | null,
      createdBy: r.created_by as string,
      createdAt: toDate(r.created_at)!,
      updatedAt: toDate(r.updated_at)!,
      sentAt: toDate(r.sent_at),
    };
  }

  private async row(id: string, tx: Queryable = this.deps.db, lock = false): Promise<Row> {
    if (!/^[1-9][0-9]{0,17}$/.test(id)) throw fail('NOT_FOUND', 'no such campaign', { field: 'id' });
    const [row] = await tx.query<Row>(lock ? q.lockById : q.byId, [id]);
    if (!row) throw fail('NOT_FOUND', 'no such campaign', { field: 'id' });
    return row;
  }

  /**
   * The template version a reference names, for new work (a campaign, an edit, a forecast, a one-off): NOT_FOUND when
   * there is none, ARCHIVED when its template was archived.
   */
  async resolveTemplate(ref: TemplateRef): Promise<TemplateVersion> {
    const version = await this.findTemplate(ref);
    await requireLiveTemplate(this.deps.db, version.versionId, 'templateId');
    return version;
  }

  private async findTemplate(ref: TemplateRef): Promise<TemplateVersion> {
    if ('versionId' in ref) return this.deps.templates.getVersion(ref.versionId);
    if ('templateId' in ref) {
      const [row] = await this.deps.db.query<{ id: unknown }>(q.latestTemplateVersion, [ref.templateId]);
      if (!row) throw fail('NOT_FOUND', 'template not found', { field: 'templateId' });
      return this.deps.templates.getVersion(Number(row.id));
    }
    return this.deps.templates.get(ref.name, ref.version);
  }

  private async resolveAudience(ref: AudienceRef): Promise<{ kind: 'segment'; version: SegmentVersion } | { kind: 'contact'; patientId: number; crmId: string | null }> {
    if (ref.kind === 'contact') {
      if ('patientId' in ref) {
        if (!Number.isSafeInteger(ref.patientId) || ref.patientId < 1 || !(await this.deps.facts.readFacts([ref.patientId])).has(ref.patientId)) {
          throw fail('NOT_FOUND', 'no such patient', { field: 'audience.patientId' });
        }
        return { kind: 'contact', patientId: ref.patientId, crmId: null };
      }
      const ids = await this.deps.facts.findByCrmId(ref.crmId);
      if (ids.length === 0) throw fail('NOT_FOUND', 'no patient is linked to this CRM record', { field: 'audience.crmId' });
      if (ids.length > 1) throw fail('CONFLICT', 'more than one patient is linked to this CRM record', { field: 'audience.crmId' });
      return { kind: 'contact', patientId: ids[0]!, crmId: ref.crmId };
    }
    const version = await this.findSegment(ref);
    await requireLiveSegment(this.deps.db, version.versionId, 'audience.segmentId');
    return { kind: 'segment', version };
  }

  private async findSegment(ref: Extract<AudienceRef, { kind: 'segment' }>): Promise<SegmentVersion> {
    if ('segmentVersionId' in ref) return this.deps.segmentVersions.getVersion(ref.segmentVersionId);
    if ('segmentId' in ref) {
      const [row] = await this.deps.db.query<{ id: unknown }>(q.latestSegmentVersion, [ref.segmentId]);
      if (!row) throw fail('NOT_FOUND', 'segment not found', { field: 'audience.segmentId' });
      return this.deps.segmentVersions.getVersion(Number(row.id));
    }
    return this.deps.segmentVersions.get(ref.name, ref.version);
  }

  /** Checks name, purpose and mode against the template's analysis; returns the resolved parts. */
  private async validate(input: CampaignInput) {
    const name = input.name.trim();
    if (!namePattern.test(name)) throw fail('BAD_REQUEST', 'campaign name must be 1-200 letters, digits, spaces or punctuation', { field: 'name' });
    if (!isPurpose(input.purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
    const mode = input.deliveryMode ?? 'tls-or-escrow';
    if (!(deliveryModes as readonly string[]).includes(mode)) throw fail('BAD_REQUEST', 'unknown delivery mode', { field: 'deliveryMode' });
    const template = await this.resolveTemplate(input.template);
    if (!template.deliveryModes.includes(mode)) {
      throw fail('DELIVERY_MODE_NOT_ALLOWED', `this template needs delivery mode ${template.deliveryModes.join(' or ')}, not ${mode}`, { field: 'deliveryMode' });
    }
    const audience = await this.resolveAudience(input.audience);
    return { name, purpose: input.purpose, mode, template, audience };
  }

  private async record(
    tx: Queryable,
    campaign: Row,
    decision: CampaignDecision['decision'],
    session: { username: string; role: string; ehrIdentity?: Session['ehrIdentity'] },
    at: Date,
    extra: { approvalHash?: string | null; comment?: string | null; action: string; outcome?: 'success' | 'denied' | 'failure' },
  ): Promise<void> {
    const [d] = await tx.query<{ id: unknown }>(q.insertDecision, [
      campaign.id, decision, session.username, session.role, campaign.revision, extra.approvalHash ?? null, at,
    ]);
    if (extra.comment) await tx.query(q.sealDecisionComment, [d!.id, this.deps.cipher.seal(extra.comment, commentAt(String(d!.id)))]);
    if (session.ehrIdentity) await tx.query(q.signDecision, [d!.id, session.ehrIdentity.practitioner, session.ehrIdentity.iss]);
    await this.deps.audit.append(
      {
        actor: session.username, role: session.role, action: extra.action, purpose: campaign.purpose as string,
        entity: `campaign/${String(campaign.id)}`, outcome: extra.outcome ?? 'success', at,
      },
      tx,
    );
  }

  private audit(tx: Queryable | undefined, session: { username: string; role: string }, action: string, campaign: Row, at: Date, outcome: 'success' | 'failure' = 'success') {
    return this.deps.audit.append(
      { actor: session.username, role: session.role, action, purpose: campaign.purpose as string, entity: `campaign/${String(campaign.id)}`, outcome, at },
      tx,
    );
  }

  /** The approval subject of a campaign as it stands now (template and segment versions are immutable rows). */
  async approvalSubjectOf(c: Campaign): Promise<ApprovalSubject> {
    const template = await this.deps.templates.getVersion(c.templateVersionId);
    const audience: ApprovalSubject['audience'] =
      c.audience.kind === 'contact'
        ? { kind: 'contact', patientId: c.audience.patientId }
        : await this.deps.segmentVersions
            .getVersion(c.audience.segmentVersionId)
            .then((v) => ({ kind: 'segment' as const, segmentVersionId: v.versionId, definitionHash: v.definitionHash }));
    return {
      templateVersionId: template.versionId,
      templateContentHash: template.contentHash,
      audience,
      mergeTags: template.mergeTags,
      deliveryMode: c.deliveryMode,
      purpose: c.purpose,
    };
  }

  async create(session: Session | null | undefined, input: CampaignInput): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.create');
    const v = await this.validate(input);
    const at = this.clock();
    return this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.insertCampaign, [
        v.name, v.purpose, v.mode, v.template.versionId, v.audience.kind,
        v.audience.kind === 'segment' ? v.audience.version.versionId : null,
        v.audience.kind === 'contact' ? v.audience.patientId : null,
        who.username, at,
      ]);
      const id = String(row!.id);
      if (v.audience.kind === 'contact' && v.audience.crmId) {
        const sealed = this.deps.cipher.seal(v.audience.crmId, contactAt(id));
        await tx.query(q.sealContact, [id, sealed]);
        row!.contact_sealed = sealed;
      }
      await this.audit(tx, who, 'campaign.create', row!, at);
      return this.fromRow(row!);
    });
  }

  /**
   * Changes what a campaign sends, to whom, why or how. Any edit voids a standing approval and cancels every queued
   * message of the campaign; the campaign is a draft again and needs a new submission.
   */
  async update(session: Session | null | undefined, id: string, patch: Partial<CampaignInput>): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.edit');
    const current = this.fromRow(await this.row(id));
    const input: CampaignInput = {
      name: patch.name ?? current.name,
      purpose: patch.purpose ?? current.purpose,
      deliveryMode: patch.deliveryMode ?? current.deliveryMode,
      template: patch.template ?? { versionId: current.templateVersionId },
      audience:
        patch.audience ??
        (current.audience.kind === 'contact'
          ? current.audience.crmId
            ? { kind: 'contact', crmId: current.audience.crmId }
            : { kind: 'contact', patientId: current.audience.patientId }
          : { kind: 'segment', segmentVersionId: current.audience.segmentVersionId }),
    };
    const v = await this.validate(input);
    const at = this.clock();
    const updated = await this.deps.db.transaction(async (tx) => {
      const row = await this.row(id, tx, true);
      const status = row.status as CampaignStatus;
      if (!editable.includes(status)) throw fail('CAMPAIGN_STATE', `a ${status} campaign cannot be edited`);
      const hadApproval = row.approval_hash != null;
      const [next] = await tx.query<Row>(q.updateContent, [
        id, v.name, v.purpose, v.mode, v.template.versionId, v.audience.kind,
        v.audience.kind === 'segment' ? v.audience.version.versionId : null,
        v.audience.kind === 'contact' ? v.audience.patientId : null,
        v.audience.kind === 'contact' && v.audience.crmId ? this.deps.cipher.seal(v.audience.crmId, contactAt(id)) : null,
        at,
      ]);
      await this.audit(tx, who, 'campaign.edit', next!, at);
      if (hadApproval) await this.record(tx, next!, 'voided', who, at, { approvalHash: row.approval_hash as string, action: 'campaign.void' });
      return { row: next!, hadApproval };
    });
    if (updated.hadApproval) await this.deps.outbox.cancelQueued({ campaignId: outboxCampaignId(id) }, 'campaign edited: approval voided');
    return this.fromRow(updated.row);
  }

  /** Puts a draft up for approval; one whose template or segment was archived since it was drafted is refused (ARCHIVED). */
  async submit(session: Session | null | undefined, id: string): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.submit');
    return this.transition(id, ['draft', 'rejected'], async (tx, row, at) => {
      await requireLiveTemplate(tx, Number(row.template_version_id), 'templateId');
      if (row.segment_version_id != null) await requireLiveSegment(tx, Number(row.segment_version_id), 'audience.segmentId');
      const [next] = await tx.query<Row>(q.setStatus, [id, 'pending-approval', at]);
      await this.record(tx, next!, 'submitted', who, at, { action: 'campaign.submit' });
      return next!;
    });
  }

  /**
   * A clinician approves: the hash binds template content, audience, merge tags, delivery mode and purpose, and the
   * segment's membership is frozen (snapshot) as of now.
   */
  async approve(session: Session | null | undefined, id: string, comment?: string): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.approve');
    const before = this.fromRow(await this.row(id));
    if (before.status !== 'pending-approval') throw fail('CAMPAIGN_STATE', `a ${before.status} campaign cannot be approved`);
    const hash = approvalHash(await this.approvalSubjectOf(before));
    const snapshot =
      before.audience.kind === 'segment'
        ? await this.deps.segments.snapshotMembership(before.audience.segmentVersionId, { actor: who.username, reason: `campaign/${id}` })
        : undefined;
    return this.transition(id, ['pending-approval'], async (tx, row, at) => {
      if (Number(row.revision) !== before.revision) throw fail('APPROVAL_VOID', 'the campaign changed while it was being approved');
      const [next] = await tx.query<Row>(q.setApproved, [id, hash, who.username, at, snapshot?.id ?? null, snapshot?.memberCount ?? 1]);
      await this.record(tx, next!, 'approved', who, at, { approvalHash: hash, comment: comment ?? null, action: 'campaign.approve' });
      return next!;
    });
  }

  async reject(session: Session | null | undefined, id: string, comment: string): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.reject');
    if (!comment?.trim()) throw fail('BAD_REQUEST', 'a rejection needs a comment', { field: 'comment' });
    return this.transition(id, ['pending-approval'], async (tx, _row, at) => {
      const [next] = await tx.query<Row>(q.clearApproval, [id, 'rejected', at]);
      await this.record(tx, next!, 'rejected', who, at, { comment: comment.trim(), action: 'campaign.reject' });
      return next!;
    });
  }

  /** A clinician withdraws a standing approval: every queued message of the campaign is cancelled; the campaign is a draft again. */
  async withdraw(session: Session | null | undefined, id: string, comment?: string): Promise<Campaign & { cancelled: number }> {
    const who = this.allow(session, 'campaigns.approve');
    const next = await this.transition(id, withApproval, async (tx, row, at) => {
      const [n] = await tx.query<Row>(q.clearApproval, [id, 'draft', at]);
      await this.record(tx, n!, 'withdrawn', who, at, { approvalHash: row.approval_hash as string, comment: comment ?? null, action: 'campaign.withdraw' });
      return n!;
    });
    const cancelled = await this.deps.outbox.cancelQueued({ campaignId: outboxCampaignId(id) }, 'approval withdrawn');
    this.log.info({ campaign: id, cancelled }, 'approval withdrawn; queued messages cancelled');
    return { ...next, cancelled };
  }

  /** Schedules an approved campaign (now when `at` is absent); the send run picks it up when due. */
  async schedule(session: Session | null | undefined, id: string, at?: Date): Promise<Campaign> {
    const who = this.allow(session, 'campaigns.schedule');
    const c = this.fromRow(await this.row(id));
    if (c.status !== 'approved' && c.status !== 'scheduled') throw fail('CAMPAIGN_STATE', `a ${c.status} campaign cannot be scheduled`);
    await this.assertApprovalHolds(c);
    return this.transition(id, ['approved', 'scheduled'], async (tx, _row, now) => {
      const [next] = await tx.query<Row>(q.setScheduled, [id, at ?? now, now]);
      await this.audit(tx, who, 'campaign.schedule', next!, now);
      return next!;
    });
  }

  /** Stops a campaign for good: queued messages are cancelled. Admins may cancel too (the emergency stop). */
  async cancel(session: Session | null | undefined, id: string): Promise<Campaign & { cancelled: number }> {
    const who = this.allow(session, 'campaigns.cancel');
    const next = await this.transition(id, cancellable, async (tx, _row, at) => {
      const [n] = await tx.query<Row>(q.setStatus, [id, 'cancelled', at]);
      await this.record(tx, n!, 'cancelled', who, at, { action: 'campaign.cancel' });
      return n!;
    });
    const cancelled = await this.deps.outbox.cancelQueued({ campaignId: outboxCampaignId(id) }, 'campaign cancelled');
    return { ...next, cancelled };
  }

  private async transition(id: string, from: readonly CampaignStatus[], apply: (tx: Queryable, row: Row, at: Date) => Promise<Row>): Promise<Campaign> {
    const at = this.clock();
    const row = await this.deps.db.transaction(async (tx) => {
      const r = await this.row(id, tx, true);
      if (!from.includes(r.status as CampaignStatus)) throw fail('CAMPAIGN_STATE', `this operation needs a campaign that is ${from.join(' or ')}; it is ${String(r.status)}`);
      return apply(tx, r, at);
    });
    return this.fromRow(row);
  }

  /** APPROVAL_VOID unless the stored approval hash matches the campaign as it stands. */
  async assertApprovalHolds(c: Campaign): Promise<void> {
    if (!c.approvalHash) throw fail('APPROVAL_VOID', 'the campaign has no standing approval');
    const now = approvalHash(await this.approvalSubjectOf(c));
    if (now !== c.approvalHash) throw fail('APPROVAL_VOID', 'the approval does not match the campaign content or audience');
  }

  async get(session: Session | null | undefined, id: string): Promise<Campaign> {
    this.allow(session, 'campaigns.read');
    return this.fromRow(await this.row(id));
  }

  async list(session: Session | null | undefined, options: { status?: CampaignStatus; after?: number; limit?: number } = {}): Promise<Campaign[]> {
    this.allow(session, 'campaigns.read');
    const rows = await this.deps.db.query<Row>(q.list, [options.status ?? null, options.after ?? 0, Math.min(Math.max(options.limit ?? 100, 1), 500)]);
    return rows.map((r) => this.fromRow(r));
  }

  async decisions(session: Session | null | undefined, id: string): Promise<CampaignDecision[]> {
    this.allow(session, 'campaigns.read');
    return this.readDecisions(id);
  }

  /** The decisions of a campaign for a caller already authorized for the operation at hand (an admin's cancel shows them too). */
  async readDecisions(id: string): Promise<CampaignDecision[]> {
    await this.row(id);
    const rows = await this.deps.db.query<Row>(q.decisionsOf, [id]);
    return rows.map((r) => ({
      decision: r.decision as CampaignDecision['decision'],
      by: r.by_user as string,
      role: r.role as string,
      revision: Number(r.revision),
      approvalHash: (r.approval_hash as string | null) ?? null,
      comment: r.comment_sealed ? this.deps.cipher.openText(asBuffer(r.comment_sealed as Uint8Array), commentAt(String(r.id))) : null,
      at: toDate(r.at)!,
      practitioner: (r.practitioner as string | null) ?? null,
      iss: (r.ehr_iss as string | null) ?? null,
    }));
  }

  /**
   * The send run: claims scheduled campaigns that are due, checks each approval still holds, materialises the frozen
   * audience, excludes by reason and queues the rest (idempotent: a rerun queues nobody twice). A run that died midway
   * (its campaign stays `sending` without a report) is taken again after `sendRunLeaseMs`. Returns the reports.
   */
  async runDue(limit = 10): Promise<Array<{ id: string; report?: SendReport; error?: string }>> {
    const at = this.clock();
    const stale = new Date(at.getTime() - (this.deps.sendRunLeaseMs ?? 600_000));
    const claimed = await this.deps.db.query<Row>(q.claimDue, [at, limit, stale]);
    const out: Array<{ id: string; report?: SendReport; error?: string }> = [];
    for (const row of claimed) {
      const c = this.fromRow(row);
      try {
        out.push({ id: c.id, report: await this.materialise(c) });
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'INTERNAL';
        this.log.warn({ campaign: c.id, code }, 'campaign send run failed');
        if (code === 'APPROVAL_VOID') {
          await this.deps.db.transaction(async (tx) => {
            const [n] = await tx.query<Row>(q.clearApproval, [c.id, 'draft', this.clock()]);
            await this.record(tx, n!, 'voided', { username: 'scheduler', role: 'system' }, this.clock(), { approvalHash: c.approvalHash, action: 'campaign.void', outcome: 'failure' });
          });
        } else {
          // Back to scheduled: the next run retries (enqueue is idempotent).
          await this.deps.db.query(q.setStatus, [c.id, 'scheduled', this.clock()]);
        }
        out.push({ id: c.id, error: code });
      }
    }
    if (out.some((o) => o.report && o.report.queued > 0)) this.deps.onQueued?.();
    return out;
  }

  private async materialise(c: Campaign): Promise<SendReport> {
    await this.assertApprovalHolds(c);
    const at = this.clock();
    const campaignKey = outboxCampaignId(c.id);
    const excluded = noExclusions();
    let members = 0;
    let queued = 0;
    const batch = this.deps.batchSize ?? 1000;
    const sendBatch = async (ids: number[]) => {
      members += ids.length;
      const assessed = await assessRecipients(this.deps, { patientIds: ids, purpose: c.purpose, at, campaignId: campaignKey });
      addCounts(excluded, assessed.excluded);
      queued += await this.deps.outbox.enqueue(
        assessed.eligible.map((e) => ({
          campaignId: campaignKey,
          templateVersion: c.templateVersionId,
          patientId: String(e.patientId),
          purpose: c.purpose,
          deliveryMode: c.deliveryMode,
          idempotencyKey: `${campaignKey}/a${c.approvalSeq}/${e.patientId}`,
          notBefore: c.scheduledAt ?? at,
        })),
      );
    };
    if (c.audience.kind === 'contact') await sendBatch([c.audience.patientId]);
    else {
      if (c.snapshotId == null) throw fail('APPROVAL_VOID', 'the approved audience snapshot is missing');
      let after = -1;
      for (;;) {
        const ids = await this.deps.segments.snapshotMembers(c.snapshotId, { after, limit: batch });
        if (ids.length === 0) break;
        await sendBatch(ids);
        after = ids[ids.length - 1]!;
        if (ids.length < batch) break;
      }
    }
    const report: SendReport = { members, queued, excluded, at: at.toISOString() };
    await this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.setSendReport, [c.id, JSON.stringify(report), at]);
      await this.audit(tx, { username: 'scheduler', role: 'system' }, 'campaign.send', row!, at);
    });
    this.log.info({ campaign: c.id, members, queued, excluded: members - queued }, 'campaign materialised');
    return report;
  }

  /** Marks campaigns whose messages have all finished as sent; returns their ids. */
  async completeFinished(): Promise<string[]> {
    const done: string[] = [];
    for (const { id } of await this.deps.db.query<{ id: unknown }>(q.sendingCampaigns)) {
      const at = this.clock();
      const [row] = await this.deps.db.query<Row>(q.markSent, [id, at, outboxCampaignId(String(id))]);
      if (row) {
        await this.audit(undefined, { username: 'scheduler', role: 'system' }, 'campaign.complete', row, at);
        done.push(String(id));
      }
    }
    return done;
  }

  /** Delivery counts from the outbox, exclusions from the send runs, bounces, unsubscribes and human opens. */
  async stats(session: Session | null | undefined, id: string): Promise<CampaignStats> {
    this.allow(session, 'campaigns.report');
    const c = this.fromRow(await this.row(id));
    const key = outboxCampaignId(id);
    const count = async (sql: string) => Number((await this.deps.db.query<{ n: number }>(sql, [key]))[0]?.n ?? 0);
    return {
      states: await this.deps.outbox.campaignStates(key),
      excluded: c.sendReport?.excluded ?? noExclusions(),
      bounced: await count(q.bouncesOf),
      unsubscribed: await count(q.unsubscribedOf),
      opened: await count(q.opensOf),
    };
  }

  /**
   * How an audience would be delivered now: members excluded by reason, then per recipient domain what the TLS policy
   * would do (each domain assessed once; the router caches its probes). Reads facts in memory; audited as one row.
   */
  async forecast(
    session: Session | null | undefined,
    input: { template: TemplateRef; audience: AudienceRef; purpose: string; deliveryMode: DeliveryMode },
  ): Promise<DeliveryForecast> {
    const who = this.allow(session, 'campaigns.create');
    if (!this.deps.router) throw fail('NOT_IMPLEMENTED', 'the forecast needs the delivery router');
    if (!isPurpose(input.purpose)) throw fail('BAD_REQUEST', 'unknown purpose', { field: 'purpose' });
    const template = await this.resolveTemplate(input.template);
    const modeProblem = template.deliveryModes.includes(input.deliveryMode)
      ? null
      : `clinical content needs delivery mode ${template.deliveryModes.join(' or ')}, not ${input.deliveryMode}`;
    const audience = await this.resolveAudience(input.audience);
    const ids = audience.kind === 'contact' ? [audience.patientId] : await this.deps.segments.allMembers(audience.version.definition);
    const at = this.clock();
    const excluded = noExclusions();
    const domains: string[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const assessed = await assessRecipients(this.deps, { patientIds: ids.slice(i, i + 1000), purpose: input.purpose, at });
      addCounts(excluded, assessed.excluded);
      for (const e of assessed.eligible) domains.push(String(e.facts.email).slice(String(e.facts.email).lastIndexOf('@') + 1).trim().toLowerCase());
    }
    await this.deps.audit.append({
      actor: who.username, role: who.role, action: 'campaign.forecast', purpose: input.purpose,
      entity: audience.kind === 'segment' ? `segment-version/${audience.version.versionId}` : 'contact/1', at,
    });
    return forecastDelivery({ router: this.deps.router, mode: input.deliveryMode, phiFree: template.phiClass === 'none', domains, excluded, modeProblem });
  }

  /**
   * Whether a message of this outbox campaign key may still go: its campaign is sending (or sent: a soft bounce retries)
   * under a standing approval. One-off keys have no campaign. Checked at dispatch, so a withdrawal also stops messages a
   * worker had already claimed.
   */
  async mayDispatch(outboxCampaignKey: string): Promise<boolean> {
    const m = /^campaign\/([1-9][0-9]{0,17})$/.exec(outboxCampaignKey);
    if (!m) return !outboxCampaignKey.startsWith('campaign/');
    const [row] = await this.deps.db.query<{ status: string; approval_hash: string | null }>(q.sendable, [m[1]]);
    return !!row && row.approval_hash !== null && (row.status === 'sending' || row.status === 'sent');
  }

  /** Whether a clinician approval covers this template version for this purpose and mode (one-off sends need one unless the content is PHI-free). */
  async approvedContent(templateVersionId: number, purpose: string, mode: DeliveryMode): Promise<boolean> {
    return (await this.deps.db.query(q.approvedForTemplate, [templateVersionId, purpose, mode])).length > 0;
  }
}
