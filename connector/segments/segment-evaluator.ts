// Evaluates a whole segment definition over the index: predicates to bitsets, combined with AND / OR / NOT word by word.
import { andInPlace, andNotInPlace, orInPlace, popcount, type Bitset } from './bitset.js';
import { formatPath, type SegmentNode } from './definition.js';
import { compilePredicate, scanPredicate } from './predicate-scan.js';
import { describeSegmentNode } from './segment-description.js';
import type { SegmentIndex } from './segment-index.js';

/** The rows matching `node` on day `asOf`. The result is a fresh bitset the caller may modify. */
export function evaluateSegment(index: SegmentIndex, node: SegmentNode, asOf: number): Bitset {
  if ('all' in node) {
    const children = orderForAll(node.all);
    const acc = evaluateSegment(index, children[0]!, asOf);
    let sparse = false;
    for (let i = 1; i < children.length; i++) sparse = refine(index, acc, children[i]!, asOf, sparse);
    return acc;
  }
  if ('any' in node) {
    const acc = evaluateSegment(index, node.any[0]!, asOf);
    for (let i = 1; i < node.any.length; i++) orInPlace(acc, evaluateSegment(index, node.any[i]!, asOf));
    return acc;
  }
  if ('not' in node) return andNotInPlace(index.present.slice(), evaluateSegment(index, node.not, asOf));
  return scanPredicate(index, node, asOf);
}

/** Below one candidate in this many rows, testing candidates one by one beats scanning whole columns. */
const SPARSE = 8;

/**
 * acc &= node. When acc is sparse and node is a predicate (or `not` of one), only the candidates are tested, so an
 * `all` costs one full scan for its first child and little for the rest. `sparse` is passed down once known: an AND
 * only shrinks acc, so it stays sparse.
 */
function refine(index: SegmentIndex, acc: Bitset, node: SegmentNode, asOf: number, knownSparse = false): boolean {
  if ('all' in node) {
    let sparse = knownSparse;
    for (const child of orderForAll(node.all)) sparse = refine(index, acc, child, asOf, sparse);
    return sparse;
  }
  const negate = 'not' in node;
  const target = 'not' in node ? node.not : node;
  const sparse = knownSparse || popcount(acc) * SPARSE <= index.capacity;
  if (!('type' in target) || !sparse) {
    andInPlace(acc, evaluateSegment(index, node, asOf));
    return false;
  }
  const compiled = compilePredicate(index, target, asOf);
  if (compiled.refine) {
    compiled.refine(acc, negate);
    return true;
  }
  const test = compiled.test;
  for (let w = 0; w < acc.length; w++) {
    let x = acc[w]!;
    if (x === 0) continue;
    let keep = x;
    while (x !== 0) {
      const low = x & -x;
      if (test((w << 5) + 31 - Math.clz32(low)) === negate) keep ^= low;
      x ^= low;
    }
    acc[w] = keep;
  }
  return true;
}

/**
 * AND is commutative, so an `all` runs its likely most selective children first (clinical facts and codes, then
 * demographics, then broad flags and nested nodes). Stable within a rank; the result never depends on the order.
 */
function orderForAll(children: SegmentNode[]): SegmentNode[] {
  return children
    .map((node, i) => ({ node, i, rank: selectivityRank(node) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.node);
}

function selectivityRank(node: SegmentNode): number {
  if (!('type' in node)) return 3;
  switch (node.type) {
    case 'state':
    case 'lastVisit':
    case 'age':
    case 'gender':
    case 'coverage':
    case 'authorized':
      return 1;
    case 'notSuppressed':
      return 2;
    default:
      return 0;
  }
}

export interface ExplainStep {
  /** Where the node sits in the definition (`all[1].any[0]`; `(root)` for the top). */
  path: string;
  /** `all`, `any`, `not` or the predicate type. */
  kind: string;
  /** A PHI-free one-line reading of the node. */
  description: string;
  /** Patients matching this node on its own. */
  count: number;
  /**
   * Patients left after this node within its parent: the running intersection of an `all` or union of an `any`
   * up to and including this node (for the root and under `not`, the node's own count).
   */
  cumulative: number;
  depth: number;
}

/** The count after each node, in the tree order (pre-order), for the "why is my segment empty" view. */
export function explainSegment(index: SegmentIndex, node: SegmentNode, asOf: number): ExplainStep[] {
  const steps: ExplainStep[] = [];
  const visit = (n: SegmentNode, path: PropertyKey[]): Bitset => {
    const step: ExplainStep = {
      path: formatPath(path),
      kind: 'all' in n ? 'all' : 'any' in n ? 'any' : 'not' in n ? 'not' : n.type,
      description: describeSegmentNode(n),
      count: 0,
      cumulative: 0,
      depth: path.filter((p) => typeof p === 'string').length,
    };
    steps.push(step);
    let result: Bitset;
    if ('all' in n || 'any' in n) {
      const key = 'all' in n ? 'all' : 'any';
      const children: SegmentNode[] = 'all' in n ? n.all : n.any;
      let acc: Bitset | undefined;
      for (let i = 0; i < children.length; i++) {
        const at = steps.length;
        const bits = visit(children[i]!, [...path, key, i]);
        acc = acc ? (key === 'all' ? andInPlace(acc, bits) : orInPlace(acc, bits)) : bits;
        steps[at]!.cumulative = popcount(acc);
      }
      result = acc!;
    } else if ('not' in n) {
      const at = steps.length;
      const inner = visit(n.not, [...path, 'not']);
      steps[at]!.cumulative = steps[at]!.count;
      result = andNotInPlace(index.present.slice(), inner);
    } else {
      result = scanPredicate(index, n, asOf);
    }
    step.count = popcount(result);
    if (path.length === 0) step.cumulative = step.count;
    return result;
  };
  visit(node, []);
  return steps;
}
