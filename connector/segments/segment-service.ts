// Segment operations over the live index: count, explain, members, masked and audited preview, saved versions, snapshots.
import { fail } from '../errors.js';
import { popcount, setRowsAfter } from './bitset.js';
import { ageOn, dayNumber, isoDay, NO_DAY, today } from './day-number.js';
import { parseSegmentDefinition, type SegmentDefinition } from './definition.js';
import { definitionHash } from './definition-hash.js';
import { evaluateSegment, explainSegment, type ExplainStep } from './segment-evaluator.js';
import type { SegmentIndex } from './segment-index.js';
import type { SaveSegmentInput, SegmentRepository, SegmentSnapshot, SegmentSummary, SegmentVersion } from './segment-repository.js';

/** An audit row as the audit log takes it (structurally its AuditEntry): who looked at which patient, and why. */
export interface SegmentAuditEntry {
  actor: string;
  role: string;
  action: string;
  purpose?: string | null;
  patientId?: number | null;
  entity?: string | null;
  outcome?: 'success' | 'denied' | 'failure';
}
export type SegmentAudit = (entries: readonly SegmentAuditEntry[]) => Promise<unknown>;

export interface SegmentServiceDeps {
  /** The live index (built lazily by the app on first use). */
  index: () => Promise<SegmentIndex>;
  repository: SegmentRepository;
  /** Records every preview (one row per patient shown). */
  audit: SegmentAudit;
  /** The clock that sets the default evaluation day. */
  clock?: () => Date;
}

export interface EvaluateOptions {
  /** The evaluation day (YYYY-MM-DD): ages and "within N days" are taken on it. Default: today (UTC). */
  asOf?: string;
}

export interface CountResult {
  count: number;
  /** Patients in the index. */
  total: number;
  asOf: string;
  definitionHash: string;
  elapsedMs: number;
}

export interface MembersPage {
  ids: number[];
  /** Pass as `after` for the next page; null on the last page. */
  next: number | null;
  count: number;
  asOf: string;
}

export interface PreviewMember {
  id: number;
  /** `J. D.` */
  initials: string;
  /** Ten-year band (`40-49`); `90+` above 89 (HIPAA Safe Harbor); `unknown` without a birth date. */
  ageBand: string;
  gender: string;
  state?: string;
}

export interface PreviewOptions extends EvaluateOptions {
  actor: string;
  role: string;
  /** Members to show (1-20, default 5). */
  limit?: number;
  /** A PHI-free reference to what is being previewed (`segment/12`). */
  entity?: string;
}

const genderNames = ['', 'male', 'female', 'other', 'unknown'];

export class SegmentService {
  private readonly clock: () => Date;

  constructor(private readonly deps: SegmentServiceDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  private asOfDay(options: EvaluateOptions): number {
    if (options.asOf === undefined) return today(this.clock());
    const day = /^\d{4}-\d{2}-\d{2}$/.test(options.asOf) ? dayNumber(options.asOf) : NO_DAY;
    if (day === NO_DAY) throw fail('BAD_REQUEST', 'asOf must be a date YYYY-MM-DD', { field: 'asOf' });
    return day;
  }

  async count(definition: unknown, options: EvaluateOptions = {}): Promise<CountResult> {
    const parsed = parseSegmentDefinition(definition);
    const asOf = this.asOfDay(options);
    const index = await this.deps.index();
    const started = performance.now();
    const count = popcount(evaluateSegment(index, parsed, asOf));
    return { count, total: index.size, asOf: isoDay(asOf), definitionHash: definitionHash(parsed), elapsedMs: performance.now() - started };
  }

  async explain(definition: unknown, options: EvaluateOptions = {}): Promise<{ steps: ExplainStep[]; total: number; asOf: string }> {
    const parsed = parseSegmentDefinition(definition);
    const asOf = this.asOfDay(options);
    const index = await this.deps.index();
    return { steps: explainSegment(index, parsed, asOf), total: index.size, asOf: isoDay(asOf) };
  }

  /** Member ids in ascending order, a page at a time (`after` is the last id of the previous page). */
  async members(definition: unknown, options: EvaluateOptions & { after?: number; limit?: number } = {}): Promise<MembersPage> {
    const parsed = parseSegmentDefinition(definition);
    const asOf = this.asOfDay(options);
    const limit = clampedInt(options.limit, 1000, 1, 100_000);
    const index = await this.deps.index();
    const bits = evaluateSegment(index, parsed, asOf);
    const after = options.after !== undefined && Number.isFinite(options.after) ? Math.trunc(options.after) : -1;
    const ids = setRowsAfter(bits, after, limit + 1);
    const more = ids.length > limit;
    if (more) ids.pop();
    return { ids, next: more ? ids[ids.length - 1]! : null, count: popcount(bits), asOf: isoDay(asOf) };
  }

  /** A few members, masked (initials, age band, gender, state), each one audited as a PHI view. */
  async preview(definition: unknown, options: PreviewOptions): Promise<{ members: PreviewMember[]; count: number; asOf: string }> {
    const parsed = parseSegmentDefinition(definition);
    const asOf = this.asOfDay(options);
    const limit = clampedInt(options.limit, 5, 1, 20);
    const index = await this.deps.index();
    const bits = evaluateSegment(index, parsed, asOf);
    const ids = setRowsAfter(bits, -1, limit);
    const members = ids.map((id) => maskedMember(index, id, asOf));
    await this.deps.audit(
      ids.map((id) => ({
        actor: options.actor,
        role: options.role,
        action: 'segment.preview',
        purpose: 'operations',
        patientId: id,
        entity: options.entity ?? `segment-definition/${definitionHash(parsed).slice(0, 16)}`,
        outcome: 'success' as const,
      })),
    );
    return { members, count: popcount(bits), asOf: isoDay(asOf) };
  }

  save(input: SaveSegmentInput): Promise<SegmentVersion & { created: boolean }> {
    return this.deps.repository.save(input);
  }

  list(): Promise<SegmentSummary[]> {
    return this.deps.repository.list();
  }

  get(name: string, version?: number): Promise<SegmentVersion> {
    return this.deps.repository.get(name, version);
  }

  /**
   * Freezes the audience of a saved segment version (when a campaign is approved): evaluates it on the live index and
   * stores the member ids. The snapshot carries the definition hash, so an approval can be checked against it.
   */
  async snapshotMembership(
    segmentVersionId: number,
    options: EvaluateOptions & { actor: string; reason?: string },
  ): Promise<SegmentSnapshot> {
    const version = await this.deps.repository.getVersion(segmentVersionId);
    const parsed = parseSegmentDefinition(version.definition);
    const asOf = this.asOfDay(options);
    const index = await this.deps.index();
    const memberIds = setRowsAfter(evaluateSegment(index, parsed, asOf), -1, Number.MAX_SAFE_INTEGER);
    return this.deps.repository.insertSnapshot({
      version,
      asOf: isoDay(asOf),
      memberIds,
      actor: options.actor,
      ...(options.reason ? { reason: options.reason } : {}),
    });
  }

  getSnapshot(snapshotId: number): Promise<SegmentSnapshot> {
    return this.deps.repository.getSnapshot(snapshotId);
  }

  snapshotMembers(snapshotId: number, options: { after?: number; limit?: number } = {}): Promise<number[]> {
    return this.deps.repository.snapshotMembers(snapshotId, options);
  }

  /** Every member id (for exports); parse errors surface as SEGMENT_INVALID. */
  async allMembers(definition: SegmentDefinition | unknown, options: EvaluateOptions = {}): Promise<number[]> {
    const parsed = parseSegmentDefinition(definition);
    const index = await this.deps.index();
    return setRowsAfter(evaluateSegment(index, parsed, this.asOfDay(options)), -1, Number.MAX_SAFE_INTEGER);
  }
}

/** An integer option within bounds; absent or not a number gives the default. */
function clampedInt(value: number | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined || !Number.isFinite(value) ? fallback : Math.trunc(value);
  return Math.min(Math.max(n, min), max);
}

function maskedMember(index: SegmentIndex, id: number, asOf: number): PreviewMember {
  const given = index.initials[id * 2]!;
  const family = index.initials[id * 2 + 1]!;
  const initial = (c: number) => (c ? `${String.fromCharCode(c)}.` : '?.');
  const birth = index.birthDay[id]!;
  let ageBand = 'unknown';
  if (birth !== NO_DAY) {
    const age = ageOn(birth, asOf);
    ageBand = age >= 90 ? '90+' : age < 0 ? 'unknown' : `${Math.floor(age / 10) * 10}-${Math.floor(age / 10) * 10 + 9}`;
  }
  const state = index.state[id]! ? index.dict.state.values[index.state[id]!] : undefined;
  return {
    id,
    initials: `${initial(given)} ${initial(family)}`,
    ageBand,
    gender: genderNames[index.gender[id]!] || 'unknown',
    ...(state ? { state } : {}),
  };
}
