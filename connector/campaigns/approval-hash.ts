// The approval hash: SHA-256 over everything a clinician's approval covers, so that any change to content, audience, merge tags, delivery mode or purpose no longer matches it.
import { createHash } from 'node:crypto';

/** What an approval binds. Each field changes the hash; nothing else does. */
export interface ApprovalSubject {
  /** The template version approved and its content hash (subject, preheader, HTML, text, From name). */
  templateVersionId: number;
  templateContentHash: string;
  /** The segment version and its definition hash, or the one contact (internal patient id). */
  audience: { kind: 'segment'; segmentVersionId: number; definitionHash: string } | { kind: 'contact'; patientId: number };
  /** The merge tags the content uses (sorted, distinct). */
  mergeTags: readonly string[];
  deliveryMode: string;
  purpose: string;
}

/** The canonical form: a fixed-order JSON array, tags sorted, so equal subjects always hash alike. */
export function approvalCanonical(s: ApprovalSubject): string {
  const audience =
    s.audience.kind === 'segment'
      ? ['segment', s.audience.segmentVersionId, s.audience.definitionHash]
      : ['contact', s.audience.patientId];
  return JSON.stringify([
    'campaign-approval/1',
    ['template', s.templateVersionId, s.templateContentHash],
    audience,
    ['merge-tags', [...new Set(s.mergeTags)].sort()],
    ['delivery-mode', s.deliveryMode],
    ['purpose', s.purpose],
  ]);
}

/** SHA-256 (hex) of the canonical form. */
export function approvalHash(s: ApprovalSubject): string {
  return bindingHash(approvalCanonical(s));
}

/**
 * The one way an approval binds what it covers (campaigns here, journeys in connector/journeys): a canonical,
 * fixed-order JSON text headed by a versioned tag, hashed with SHA-256 (hex). Any change to a part changes the hash.
 */
export function bindingHash(canonical: string): string {
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
