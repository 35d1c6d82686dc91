// One-line, PHI-free readings of segment nodes, for explain output, the CLI and the extension (pure).
import type { CodeSelector, SegmentNode } from './definition.js';

const list = (values: readonly string[]) => (values.length === 1 ? values[0]! : `one of ${values.join(', ')}`);
const codes = (s: CodeSelector) =>
  [s.code ? `${s.system ? `${s.system}|` : ''}${list(s.code)}` : '', s.valueSet ? `value set ${s.valueSet}` : '']
    .filter(Boolean)
    .join(' or ');
const within = (days: number | undefined) => (days === undefined ? '' : ` within ${days} days`);

export function describeSegmentNode(node: SegmentNode): string {
  if ('all' in node) return `all of ${node.all.length}`;
  if ('any' in node) return `any of ${node.any.length}`;
  if ('not' in node) return 'not';
  switch (node.type) {
    case 'gender':
      return `gender ${list(node.value)}`;
    case 'age':
      return node.min !== undefined && node.max !== undefined
        ? `age ${node.min}-${node.max}`
        : node.min !== undefined
          ? `age ${node.min} or older`
          : `age ${node.max} or younger`;
    case 'state':
      return `state ${list(node.value)}`;
    case 'city':
      return `city ${list(node.value)}`;
    case 'postalCode':
      return `postal code starting ${list(node.prefix)}`;
    case 'pcp':
      return `primary care provider ${list(node.value)}`;
    case 'lastVisit':
      return [
        'last visit',
        node.withinDays !== undefined ? `within ${node.withinDays} days` : '',
        node.after ? `after ${node.after}` : '',
        node.before ? `before ${node.before}` : '',
      ]
        .filter(Boolean)
        .join(' ');
    case 'lastVisitReason':
      return `last visit for ${codes(node)}`;
    case 'condition':
      return `${node.status === 'active' ? 'active ' : ''}condition ${codes(node)}`;
    case 'hba1c':
      return `latest HbA1c ${node.op} ${node.value}${within(node.withinDays)}`;
    case 'observation':
      return `latest LOINC ${node.loinc} ${node.op} ${node.value}${within(node.withinDays)}`;
    case 'coverage':
      return [
        node.active === undefined ? 'coverage' : node.active ? 'active coverage' : 'inactive coverage',
        node.payer ? `payer ${list(node.payer)}` : '',
        node.coverageType ? `type ${list(node.coverageType)}` : '',
      ]
        .filter(Boolean)
        .join(' ');
    case 'procedure':
      return `procedure ${codes(node)}${within(node.withinDays)}`;
    case 'medication':
      return `medication ${codes(node)}${within(node.withinDays)}`;
    case 'appointment':
      return `appointment in the next ${node.withinDays} days`;
    case 'authorized':
      return `authorized for ${node.purpose}`;
    case 'notSuppressed':
      return 'not suppressed';
  }
}
