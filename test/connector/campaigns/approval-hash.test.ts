// The approval hash: equal subjects hash alike (tag order does not matter), and a change to any bound field changes it.
import { describe, expect, it } from 'vitest';
import { approvalHash, type ApprovalSubject } from '../../../connector/campaigns/approval-hash.js';

const base: ApprovalSubject = {
  templateVersionId: 7,
  templateContentHash: 'a'.repeat(64),
  audience: { kind: 'segment', segmentVersionId: 3, definitionHash: 'b'.repeat(64) },
  mergeTags: ['first name', 'pcp name'],
  deliveryMode: 'tls-or-escrow',
  purpose: 'marketing',
};

describe('approval hash', () => {
  it('is a SHA-256 that does not depend on the order or repetition of merge tags', () => {
    const h = approvalHash(base);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(approvalHash({ ...base, mergeTags: ['pcp name', 'first name', 'pcp name'] })).toBe(h);
  });

  it('changes on every bound field', () => {
    const variants: Array<[string, ApprovalSubject]> = [
      ['template version', { ...base, templateVersionId: 8 }],
      ['template content', { ...base, templateContentHash: 'c'.repeat(64) }],
      ['segment version', { ...base, audience: { kind: 'segment', segmentVersionId: 4, definitionHash: 'b'.repeat(64) } }],
      ['segment definition', { ...base, audience: { kind: 'segment', segmentVersionId: 3, definitionHash: 'd'.repeat(64) } }],
      ['single contact', { ...base, audience: { kind: 'contact', patientId: 3 } }],
      ['another contact', { ...base, audience: { kind: 'contact', patientId: 4 } }],
      ['a merge tag added', { ...base, mergeTags: [...base.mergeTags, 'last a1c'] }],
      ['a merge tag removed', { ...base, mergeTags: ['first name'] }],
      ['delivery mode', { ...base, deliveryMode: 'escrow' }],
      ['purpose', { ...base, purpose: 'appointment-reminder' }],
    ];
    const hashes = new Map<string, string>([[approvalHash(base), 'base']]);
    for (const [label, subject] of variants) {
      const h = approvalHash(subject);
      expect(hashes.has(h), `${label} collides with ${hashes.get(h)}`).toBe(false);
      hashes.set(h, label);
    }
  });
});
