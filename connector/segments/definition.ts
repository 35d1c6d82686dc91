// The segment definition language: one zod schema (shared with the extension), its limits and its canonical form.
import { z } from 'zod';
import { fail } from '../errors.js';
import { valueSetNames, type ValueSetName } from './value-sets.js';

/** How deep `all` / `any` / `not` may nest, and how many nodes a definition may hold. */
export const segmentLimits = { maxDepth: 8, maxNodes: 100, maxListLength: 200, maxStringLength: 200 } as const;

const text = z.string().trim().min(1).max(segmentLimits.maxStringLength);
/** A single value or a list of them; the parsed form is always a list. */
const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (Array.isArray(v) ? v : [v]), z.array(item).min(1).max(segmentLimits.maxListLength));
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD').refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), 'not a calendar date');
const days = z.number().int().min(0).max(36_600);
const comparator = z.enum(['>', '>=', '<', '<=']);

export const genders = ['male', 'female', 'other', 'unknown'] as const;

/** A code test: `code` (one or more) in `system` (any system when absent), or a named value set. */
const codeSelector = {
  system: text.optional(),
  code: oneOrMany(text).optional(),
  valueSet: z.enum(valueSetNames).optional(),
};
const needsCode = (p: { code?: unknown; valueSet?: unknown }) => p.code !== undefined || p.valueSet !== undefined;
const needsCodeMessage = { message: 'give code or valueSet', path: ['code'] };

const predicates = [
  z.object({ type: z.literal('gender'), value: oneOrMany(z.enum(genders)) }).strict(),
  z
    .object({ type: z.literal('age'), min: z.number().int().min(0).max(150).optional(), max: z.number().int().min(0).max(150).optional() })
    .strict()
    .refine((p) => p.min !== undefined || p.max !== undefined, { message: 'give min or max', path: ['min'] })
    .refine((p) => p.min === undefined || p.max === undefined || p.min <= p.max, { message: 'min is above max', path: ['max'] }),
  z.object({ type: z.literal('state'), value: oneOrMany(text) }).strict(),
  z.object({ type: z.literal('city'), value: oneOrMany(text) }).strict(),
  z.object({ type: z.literal('postalCode'), prefix: oneOrMany(text) }).strict(),
  z.object({ type: z.literal('pcp'), value: oneOrMany(text) }).strict(),
  z
    .object({ type: z.literal('lastVisit'), before: isoDate.optional(), after: isoDate.optional(), withinDays: days.optional() })
    .strict()
    .refine((p) => p.before !== undefined || p.after !== undefined || p.withinDays !== undefined, {
      message: 'give before, after or withinDays',
      path: ['withinDays'],
    }),
  z.object({ type: z.literal('lastVisitReason'), ...codeSelector }).strict().refine(needsCode, needsCodeMessage),
  z
    .object({ type: z.literal('condition'), ...codeSelector, status: z.enum(['active', 'ever']).default('ever') })
    .strict()
    .refine(needsCode, needsCodeMessage),
  z.object({ type: z.literal('hba1c'), op: comparator, value: z.number().finite(), withinDays: days.optional() }).strict(),
  z
    .object({
      type: z.literal('observation'),
      loinc: z.string().regex(/^\d{1,7}-\d$/, 'expected a LOINC code such as 4548-4'),
      op: comparator,
      value: z.number().finite(),
      withinDays: days.optional(),
    })
    .strict(),
  z
    .object({ type: z.literal('coverage'), payer: oneOrMany(text).optional(), coverageType: oneOrMany(text).optional(), active: z.boolean().optional() })
    .strict(),
  z.object({ type: z.literal('procedure'), ...codeSelector, withinDays: days.optional() }).strict().refine(needsCode, needsCodeMessage),
  z.object({ type: z.literal('medication'), ...codeSelector, withinDays: days.optional() }).strict().refine(needsCode, needsCodeMessage),
  z.object({ type: z.literal('appointment'), withinDays: days }).strict(),
  z.object({ type: z.literal('authorized'), purpose: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'expected a purpose such as marketing') }).strict(),
  z.object({ type: z.literal('notSuppressed') }).strict(),
] as const;

/** Every predicate, told apart by `type`. */
export const segmentPredicateSchema = z.discriminatedUnion('type', predicates);
export type SegmentPredicate = z.infer<typeof segmentPredicateSchema>;
export type PredicateType = SegmentPredicate['type'];
export type Comparator = z.infer<typeof comparator>;
export type CodeSelector = { system?: string; code?: string[]; valueSet?: ValueSetName };

export type SegmentNode = SegmentPredicate | { all: SegmentNode[] } | { any: SegmentNode[] } | { not: SegmentNode };
/** A whole definition is one node (usually an `all`). */
export type SegmentDefinition = SegmentNode;

const allSchema = z.object({ all: z.array(z.lazy(() => segmentNodeSchema)).min(1) }).strict();
const anySchema = z.object({ any: z.array(z.lazy(() => segmentNodeSchema)).min(1) }).strict();
const notSchema = z.object({ not: z.lazy(() => segmentNodeSchema) }).strict();

/**
 * One node: `all`, `any`, `not` or a predicate. It picks its branch by key, so an error names the exact path
 * (`all[2].any[0].value`) instead of a union of every alternative.
 */
export const segmentNodeSchema: z.ZodType<SegmentNode, unknown> = z.unknown().transform((input, ctx): SegmentNode => {
  const branch =
    input && typeof input === 'object' && !Array.isArray(input)
      ? 'all' in input
        ? allSchema
        : 'any' in input
          ? anySchema
          : 'not' in input
            ? notSchema
            : segmentPredicateSchema
      : segmentPredicateSchema;
  const result = branch.safeParse(input);
  if (result.success) return result.data as SegmentNode;
  for (const issue of result.error.issues) ctx.addIssue({ ...issue, path: issue.path } as Parameters<typeof ctx.addIssue>[0]);
  return z.NEVER;
});
export const segmentDefinitionSchema = segmentNodeSchema;

export type DefinitionCheck =
  | { ok: true; definition: SegmentDefinition }
  | { ok: false; code: 'SEGMENT_INVALID' | 'SEGMENT_TOO_COMPLEX'; path: string; message: string };

/** `['all', 2, 'any', 0, 'value']` -> `all[2].any[0].value`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/** Bounds the raw input before zod walks it, so a hostile definition cannot exhaust the stack. */
function measure(raw: unknown): { path: string; message: string } | undefined {
  let nodes = 0;
  const visit = (node: unknown, path: PropertyKey[], depth: number): { path: string; message: string } | undefined => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
    nodes++;
    if (nodes > segmentLimits.maxNodes) return { path: formatPath(path), message: `more than ${segmentLimits.maxNodes} nodes` };
    for (const key of ['all', 'any'] as const) {
      const children = (node as Record<string, unknown>)[key];
      if (!Array.isArray(children)) continue;
      if (depth >= segmentLimits.maxDepth) return { path: formatPath([...path, key]), message: `nested deeper than ${segmentLimits.maxDepth}` };
      for (let i = 0; i < children.length; i++) {
        const bad = visit(children[i], [...path, key, i], depth + 1);
        if (bad) return bad;
      }
    }
    const not = (node as Record<string, unknown>).not;
    if (not && typeof not === 'object') {
      if (depth >= segmentLimits.maxDepth) return { path: formatPath([...path, 'not']), message: `nested deeper than ${segmentLimits.maxDepth}` };
      return visit(not, [...path, 'not'], depth + 1);
    }
    return undefined;
  };
  return visit(raw, [], 0);
}

/** Validates a definition without throwing (the extension shows the result inline). */
export function checkSegmentDefinition(raw: unknown): DefinitionCheck {
  const tooComplex = measure(raw);
  if (tooComplex) return { ok: false, code: 'SEGMENT_TOO_COMPLEX', ...tooComplex };
  const result = segmentDefinitionSchema.safeParse(raw);
  if (result.success) return { ok: true, definition: result.data };
  const issue = firstIssue(result.error.issues);
  return { ok: false, code: 'SEGMENT_INVALID', path: formatPath(issue.path), message: issue.message };
}

/** The deepest leaf issue: a union's own issue says less than the branch it tried. */
function firstIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  const issue = issues[0]!;
  if (issue.code === 'invalid_union' && issue.errors.length === 1 && issue.errors[0]!.length > 0) {
    const inner = firstIssue(issue.errors[0]!);
    return { ...inner, path: [...issue.path, ...inner.path] };
  }
  return issue;
}

/** Parses a definition or throws SEGMENT_INVALID / SEGMENT_TOO_COMPLEX naming the path. */
export function parseSegmentDefinition(raw: unknown): SegmentDefinition {
  const check = checkSegmentDefinition(raw);
  if (check.ok) return check.definition;
  throw fail(check.code, `segment definition ${check.path}: ${check.message}`, { field: check.path });
}

/** JSON with object keys sorted at every level: the input of the definition hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Walks the tree in pre-order: every node with its path. */
export function* walkSegment(node: SegmentNode, path: PropertyKey[] = []): Generator<{ node: SegmentNode; path: PropertyKey[] }> {
  yield { node, path };
  if ('all' in node) for (let i = 0; i < node.all.length; i++) yield* walkSegment(node.all[i]!, [...path, 'all', i]);
  else if ('any' in node) for (let i = 0; i < node.any.length; i++) yield* walkSegment(node.any[i]!, [...path, 'any', i]);
  else if ('not' in node) yield* walkSegment(node.not, [...path, 'not']);
}
