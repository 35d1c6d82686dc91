// The definition hash: SHA-256 of a parsed definition's canonical JSON, so an approval names exactly one audience rule.
import { createHash } from 'node:crypto';
import { canonicalJson, type SegmentDefinition } from './definition.js';

export function definitionHash(definition: SegmentDefinition): string {
  return createHash('sha256').update(canonicalJson(definition)).digest('hex');
}
