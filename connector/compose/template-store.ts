// Saved templates: named, versioned content (every edit a new version) with a SHA-256 content hash and the PHI analysis at save.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';
import { summaryFields, versionedRecords, type SummaryFields, type SummaryRow, type VersionedRecords } from '../store/versioned-records.js';
import type { PhiClass } from './merge-tags.js';
import type { ScanOptions } from './phi-scanner.js';
import { analyzeTemplate, assertNotBlocked, parseTemplate, type DeliveryMode, type TemplateAnalysis, type TemplateContent } from './template.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertTemplate',
  'templateByName',
  'lockTemplate',
  'latestVersion',
  'versionByNumber',
  'versionById',
  'insertVersion',
  'listTemplates',
  'listVersions',
  'archiveTemplate',
] as const);

export interface TemplateVersion {
  /** template_versions.id: what a campaign and the outbox reference. */
  versionId: number;
  templateId: number;
  name: string;
  version: number;
  content: TemplateContent;
  contentHash: string;
  /** The analysis when the version was saved. */
  mergeTags: string[];
  phiClass: PhiClass;
  deliveryModes: DeliveryMode[];
  createdBy: string;
  createdAt: string;
}

export interface TemplateSummary extends SummaryFields {
  contentHash: string;
  phiClass: PhiClass;
  mergeTags: string[];
}

export interface CreateTemplateInput {
  name: string;
  content: TemplateContent;
  description?: string;
  actor: string;
}

export interface UpdateTemplateInput {
  name: string;
  /** The fields to change; the others are taken from the latest version. `fromName: null` removes the From name. */
  content: Partial<Omit<TemplateContent, 'fromName'>> & { fromName?: string | null };
  actor: string;
}

interface VersionRow {
  id: string | number;
  template_id: string | number;
  name: string;
  version: number;
  subject: string;
  preheader: string;
  html: string;
  text_body: string;
  from_name: string | null;
  content_hash: string;
  merge_tags: string[] | string;
  phi_class: PhiClass;
  delivery_modes: DeliveryMode[] | string;
  created_by: string;
  created_at: Date | string;
}

const namePattern = /^[\p{L}\p{N}][\p{L}\p{N} ._:/()&+-]{0,119}$/u;
const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

/** SHA-256 (hex) of a template's content: the same content always hashes the same, any edit changes it. */
export function templateContentHash(content: TemplateContent): string {
  const canonical = JSON.stringify(['template/1', content.subject, content.preheader, content.html, content.text, content.fromName ?? null]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

function toVersion(r: VersionRow): TemplateVersion {
  return {
    versionId: Number(r.id),
    templateId: Number(r.template_id),
    name: r.name,
    version: r.version,
    content: {
      subject: r.subject,
      preheader: r.preheader,
      html: r.html,
      text: r.text_body,
      ...(r.from_name !== null ? { fromName: r.from_name } : {}),
    },
    contentHash: r.content_hash,
    mergeTags: json(r.merge_tags),
    phiClass: r.phi_class,
    deliveryModes: json(r.delivery_modes),
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

function checkActor(actor: string): void {
  if (!/^[A-Za-z0-9._@:-]{1,128}$/.test(actor)) throw fail('BAD_REQUEST', 'actor must be a user or system name', { field: 'actor' });
}

export class TemplateStore {
  private readonly records: VersionedRecords<VersionRow>;

  /** `scan` passes the practice's own contact details to the PHI scanner (they are not findings). */
  constructor(
    private readonly db: Db,
    private readonly scan: ScanOptions = {},
  ) {
    this.records = versionedRecords<VersionRow>(db, 'template', {
      byName: q.templateByName,
      latestVersion: q.latestVersion,
      versionByNumber: q.versionByNumber,
      listVersions: q.listVersions,
      versionById: q.versionById,
      archive: q.archiveTemplate,
    });
  }

  /** Parses, analyses and refuses PHI in header fields; returns the analysis of content that may be saved. */
  check(content: TemplateContent): TemplateAnalysis {
    const analysis = analyzeTemplate(parseTemplate(content), this.scan);
    assertNotBlocked(analysis);
    return analysis;
  }

  /** A new template at version 1; CONFLICT when the name is taken. */
  async create(input: CreateTemplateInput): Promise<TemplateVersion> {
    const name = input.name.trim();
    if (!namePattern.test(name)) throw fail('BAD_REQUEST', 'template name must be 1-120 letters, digits, spaces or ._:/()&+-', { field: 'name' });
    checkActor(input.actor);
    const content = normalize(input.content);
    const analysis = this.check(content);
    return this.db.transaction(async (tx) => {
      const [created] = await tx.query<{ id: string | number }>(q.insertTemplate, [name, input.description ?? null, input.actor]);
      if (!created) {
        const [existing] = await tx.query<{ archived_at: Date | null }>(q.templateByName, [name]);
        if (existing?.archived_at) throw fail('CONFLICT', 'an archived template has this name; choose another name', { field: 'name' });
        throw fail('CONFLICT', 'a template with this name exists; use update', { field: 'name' });
      }
      return insertVersion(tx, Number(created.id), name, 1, content, analysis, input.actor);
    });
  }

  /**
   * A new version with the given fields changed. Saving content identical to the latest version returns it
   * unchanged (`created: false`): a version is an edit, and an approval bound to it stays valid.
   */
  async update(input: UpdateTemplateInput): Promise<TemplateVersion & { created: boolean }> {
    checkActor(input.actor);
    return this.db.transaction(async (tx) => {
      const [template] = await tx.query<{ id: string | number; name: string; archived_at: Date | null }>(q.templateByName, [input.name.trim()]);
      if (!template) throw fail('NOT_FOUND', 'template not found', { field: 'name' });
      if (template.archived_at) throw fail('CONFLICT', 'the template is archived: its versions are kept but it takes no new ones', { field: 'name' });
      await tx.query(q.lockTemplate, [template.id]);
      const [latestRow] = await tx.query<VersionRow>(q.latestVersion, [template.id]);
      const latest = toVersion(latestRow!);
      const { fromName, ...rest } = input.content;
      const merged: TemplateContent = { ...latest.content, ...rest };
      if (fromName === null) delete merged.fromName;
      else if (fromName !== undefined) merged.fromName = fromName;
      const content = normalize(merged);
      const analysis = this.check(content);
      if (templateContentHash(content) === latest.contentHash) return { ...latest, created: false };
      const saved = await insertVersion(tx, Number(template.id), template.name, latest.version + 1, content, analysis, input.actor);
      return { ...saved, created: true };
    });
  }

  /** The latest version of `name`, or version `version`; NOT_FOUND when there is none. */
  async get(name: string, version?: number): Promise<TemplateVersion> {
    return toVersion((await this.records.version(name, version)).row);
  }

  /** A version by its id (what campaigns and the outbox hold). */
  async getVersion(versionId: number): Promise<TemplateVersion> {
    return toVersion(await this.records.versionById(versionId));
  }

  async versions(name: string): Promise<TemplateVersion[]> {
    return (await this.records.versions(name)).rows.map(toVersion);
  }

  /**
   * Archives a template: it leaves every list and takes no new version, while every version stays readable by id
   * (`getVersion`), so a campaign approved with one still sends exactly what was approved. NOT_FOUND when there is
   * no live template of that name.
   */
  async archive(name: string, actor: string, at: Date = new Date()): Promise<{ id: number }> {
    checkActor(actor);
    return this.records.archive(name, actor, at);
  }

  /** Live templates (archived ones are left out). */
  async list(): Promise<TemplateSummary[]> {
    const rows = await this.db.query<
      SummaryRow & {
        content_hash: string;
        phi_class: PhiClass;
        merge_tags: string[] | string;
      }
    >(q.listTemplates);
    return rows.map((r) => ({
      ...summaryFields(r),
      contentHash: r.content_hash,
      phiClass: r.phi_class,
      mergeTags: json(r.merge_tags),
    }));
  }
}

/** Templates are stored as written; absent optional parts become empty text. */
function normalize(content: TemplateContent): TemplateContent {
  return {
    subject: content.subject,
    preheader: content.preheader ?? '',
    html: content.html ?? '',
    text: content.text,
    ...(content.fromName !== undefined ? { fromName: content.fromName } : {}),
  };
}

async function insertVersion(
  tx: Pick<Db, 'query'>,
  templateId: number,
  name: string,
  version: number,
  content: TemplateContent,
  analysis: TemplateAnalysis,
  actor: string,
): Promise<TemplateVersion> {
  const contentHash = templateContentHash(content);
  const [row] = await tx.query<{ id: string | number; created_at: Date | string }>(q.insertVersion, [
    templateId,
    version,
    content.subject,
    content.preheader,
    content.html,
    content.text,
    content.fromName ?? null,
    contentHash,
    JSON.stringify(analysis.tagNames),
    analysis.phiClass,
    JSON.stringify(analysis.deliveryModes),
    actor,
  ]);
  return {
    versionId: Number(row!.id),
    templateId,
    name,
    version,
    content,
    contentHash,
    mergeTags: analysis.tagNames,
    phiClass: analysis.phiClass,
    deliveryModes: analysis.deliveryModes,
    createdBy: actor,
    createdAt: new Date(row!.created_at).toISOString(),
  };
}
