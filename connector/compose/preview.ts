// Template previews: for one real recipient (a role that may see PHI, audited, denials too), or with a made-up patient.
import { fail } from '../errors.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import type { AuditEntry } from '../audit/audit-log.js';
import type { Session } from '../users/authorize.js';
import type { Operation } from '../users/permissions.js';
import type { MergeContext } from './merge-tags.js';
import type { ScanOptions } from './phi-scanner.js';
import { compileTemplate, type ComposedMessage } from './render.js';
import { sampleFacts } from './sample-facts.js';
import type { TemplateAnalysis } from './template.js';
import type { TemplateStore, TemplateVersion } from './template-store.js';

/** Rendering real patient data for a person to read is a PHI disclosure inside the organisation. */
export const previewOperation: Operation = 'preview.phi';

export interface PreviewDeps {
  templates: Pick<TemplateStore, 'get' | 'getVersion'>;
  /** The recipient's facts, opened from the sealed store; undefined when there is no such patient. */
  loadFacts(patientId: number): Promise<PatientFacts | undefined>;
  /** users/authorize.ts: throws UNAUTHENTICATED, SESSION_EXPIRED or FORBIDDEN, else returns the session. */
  authorize(session: Session | null | undefined, operation: Operation): Session;
  /** Appends to the audit log (audit/audit-log.ts `append`); a preview is shown only once it is recorded. */
  audit(entry: AuditEntry): Promise<unknown>;
  context: MergeContext;
  scan?: ScanOptions;
}

export interface PreviewInput {
  session: Session | null | undefined;
  /** A template by name (latest or given version), or a version id. */
  template: { name: string; version?: number } | { versionId: number };
  /** The store's internal patient id. */
  patientId: number;
  /** The purpose of use recorded in the audit log (default `operations`). */
  purpose?: string;
}

export interface Preview {
  version: Pick<TemplateVersion, 'versionId' | 'templateId' | 'name' | 'version' | 'contentHash'>;
  analysis: TemplateAnalysis;
  message: ComposedMessage;
}

export async function previewTemplate(deps: PreviewDeps, input: PreviewInput): Promise<Preview> {
  const purpose = input.purpose ?? 'operations';
  let session: Session;
  try {
    session = deps.authorize(input.session, previewOperation);
  } catch (err) {
    await deps.audit({
      actor: input.session?.username ?? 'anonymous',
      role: input.session?.role ?? 'none',
      action: 'template.preview',
      purpose,
      patientId: input.patientId,
      outcome: 'denied',
    });
    throw err;
  }
  const version =
    'versionId' in input.template
      ? await deps.templates.getVersion(input.template.versionId)
      : await deps.templates.get(input.template.name, input.template.version);
  const facts = await deps.loadFacts(input.patientId);
  if (!facts) throw fail('NOT_FOUND', 'patient not found', { field: 'patientId' });
  const compiled = compileTemplate(version.content, deps.scan);
  const message = compiled.render(facts, deps.context);
  await deps.audit({
    actor: session.username,
    role: session.role,
    action: 'template.preview',
    purpose,
    patientId: input.patientId,
    entity: `template-version/${version.versionId}`,
    outcome: 'success',
  });
  return {
    version: { versionId: version.versionId, templateId: version.templateId, name: version.name, version: version.version, contentHash: version.contentHash },
    analysis: compiled.analysis,
    message,
  };
}

export type SamplePreviewDeps = Pick<PreviewDeps, 'templates' | 'authorize' | 'context' | 'scan'>;

/** The template rendered for a made-up patient (sample-facts.ts): no PHI is read, so nothing is audited. */
export async function previewSample(
  deps: SamplePreviewDeps,
  input: Omit<PreviewInput, 'patientId' | 'purpose'> & { language?: string },
): Promise<Preview> {
  deps.authorize(input.session, 'preview.sample');
  const version =
    'versionId' in input.template
      ? await deps.templates.getVersion(input.template.versionId)
      : await deps.templates.get(input.template.name, input.template.version);
  const compiled = compileTemplate(version.content, deps.scan);
  const message = compiled.render(sampleFacts(deps.context.now, input.language), deps.context);
  return {
    version: { versionId: version.versionId, templateId: version.templateId, name: version.name, version: version.version, contentHash: version.contentHash },
    analysis: compiled.analysis,
    message,
  };
}
