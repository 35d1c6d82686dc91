// Templates: the fields, the merge-tag parser (positions as line:column), the PHI analysis and the delivery-mode rules.
//
// Pure (no Node built-ins): the extension's compose panel runs the same analysis as the connector.
// Syntax: `[first name]`, `[first name|there]` (fallback when the value is missing), `[[` for a literal bracket.
// In HTML, `<!--[if mso]>` and `<![endif]-->` (Outlook conditional comments) and brackets inside <style> and
// <script> (CSS attribute selectors) are not tags.
// Rules: a finding or a PHI tag in the subject, the preheader or the From name blocks the template (the PCP as
// From name is the one allowed PHI tag there); a `clinical` tag or clinical finding allows only `tls-required`
// and `escrow`; content is PHI-free (may travel opportunistically under tls-or-escrow) only with no finding and no
// PHI tag anywhere.
import { fail } from '../errors.js';
import { findMergeTag, phiClassRank, suggestMergeTag, type MergeTag, type PhiClass } from './merge-tags.js';
import { scanText, type Finding, type PhiKind, type ScanOptions } from './phi-scanner.js';

/** The delivery modes of connector/delivery/tls-policy.ts (kept in step by a test: this file must stay pure). */
export const deliveryModes = ['tls-required', 'tls-or-escrow', 'escrow'] as const;
export type DeliveryMode = (typeof deliveryModes)[number];

export interface TemplateContent {
  subject: string;
  preheader: string;
  html: string;
  text: string;
  /** `pcp` (the patient's primary care provider, else the sender name), a literal display name, or absent (the sender name). */
  fromName?: string;
}

export const templateFields = ['subject', 'preheader', 'fromName', 'html', 'text'] as const;
export type TemplateField = (typeof templateFields)[number];
/** Fields that travel as headers or show in inbox lists: no PHI there. */
export const headerFields: readonly TemplateField[] = ['subject', 'preheader', 'fromName'];

const limits: Record<TemplateField, number> = { subject: 255, preheader: 255, fromName: 100, html: 512 * 1024, text: 256 * 1024 };

export interface Position {
  /** UTF-16 offset into the field. */
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'tag'; tag: MergeTag; fallback?: string; at: Position; end: number };

export interface ParsedTemplate {
  content: TemplateContent;
  fields: Record<TemplateField, Segment[]>;
}

export interface TagUse {
  name: string;
  phiClass: PhiClass;
  field: TemplateField;
  line: number;
  column: number;
  hasFallback: boolean;
}

/** A scanner finding located in a field (offsets into that field's text). */
export interface FieldFinding extends Finding {
  field: TemplateField;
  line: number;
  column: number;
}

export interface TemplateProblem {
  field: TemplateField;
  line: number;
  column: number;
  reason: 'phi-finding' | 'phi-tag';
  kind?: PhiKind;
  tag?: string;
}

export interface TemplateAnalysis {
  /** Every tag occurrence, in field order. */
  tags: TagUse[];
  /** The distinct tag names used, sorted. */
  tagNames: string[];
  findings: FieldFinding[];
  /** The highest class over tags and findings (an identifier finding counts as identity, a clinical one as clinical). */
  phiClass: PhiClass;
  /** No finding and no PHI tag: the rendered message may travel without verified TLS. */
  phiFree: boolean;
  /** PHI in header fields; non-empty means the template cannot be saved or sent. */
  blocked: TemplateProblem[];
  deliveryModes: DeliveryMode[];
}

const tagAt = /\[\s*([A-Za-z][A-Za-z0-9 ]{0,40}?)\s*(?:\|([^\][\r\n]{0,200}))?\]/y;

export function positionOf(text: string, offset: number): Position {
  return lineIndex(text)(offset);
}

/** Offsets to line:column for one text: the line starts are found once, each look-up is a binary search. */
export function lineIndex(text: string): (offset: number) => Position {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { offset, line: lo + 1, column: offset - starts[lo]! + 1 };
  };
}

function fieldText(content: TemplateContent, field: TemplateField): string {
  if (field === 'fromName') return content.fromName === 'pcp' ? '[pcp name]' : (content.fromName ?? '');
  return content[field];
}

const styleOrScript = /<(style|script)\b[\s\S]*?(?:<\/\1\s*>|$)/gi;

function parseField(text: string, field: TemplateField): Segment[] {
  const out: Segment[] = [];
  let position: ((offset: number) => Position) | undefined;
  // CSS attribute selectors (`a[href]`) are not tags: no merging inside <style> or <script>.
  const skip: Array<[number, number]> = [];
  if (field === 'html') for (const m of text.matchAll(styleOrScript)) skip.push([m.index, m.index + m[0].length]);
  let literal = '';
  let runStart = 0;
  const flush = (upTo: number) => {
    literal += text.slice(runStart, upTo);
    if (literal) out.push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i)) {
    if (text[i + 1] === '[') {
      literal += text.slice(runStart, i + 1);
      i += 2;
      runStart = i;
      continue;
    }
    if (field === 'html' && (text.endsWith('<!--', i) || text.endsWith('<!', i))) {
      i++;
      continue;
    }
    const inside = skip.find(([from, to]) => i >= from && i < to);
    if (inside) {
      i = inside[1];
      continue;
    }
    tagAt.lastIndex = i;
    const m = tagAt.exec(text);
    if (!m) {
      i++;
      continue;
    }
    const at = (position ??= lineIndex(text))(i);
    const tag = findMergeTag(m[1]!);
    if (!tag) {
      const hint = suggestMergeTag(m[1]!);
      throw fail(
        'TEMPLATE_INVALID',
        `unknown merge tag in ${field} at ${at.line}:${at.column}${hint ? ` (did you mean [${hint}]?)` : ''}; write [[ for a literal bracket`,
        { field, line: at.line, column: at.column },
      );
    }
    flush(i);
    out.push({ kind: 'tag', tag, ...(m[2] !== undefined ? { fallback: m[2] } : {}), at, end: i + m[0].length });
    i += m[0].length;
    runStart = i;
  }
  flush(text.length);
  return out;
}

/** Validates the fields and parses their merge tags; throws TEMPLATE_INVALID naming the field (and position). */
export function parseTemplate(content: TemplateContent): ParsedTemplate {
  for (const field of templateFields) {
    const value = field === 'fromName' ? content.fromName : content[field];
    if (field === 'fromName' && value === undefined) continue;
    if (typeof value !== 'string') throw fail('TEMPLATE_INVALID', `${field} must be text`, { field });
    if (value.length > limits[field]) throw fail('TEMPLATE_INVALID', `${field} is longer than ${limits[field]} characters`, { field });
  }
  if (!content.subject.trim()) throw fail('TEMPLATE_INVALID', 'subject is empty', { field: 'subject' });
  if (!content.text.trim()) throw fail('TEMPLATE_INVALID', 'text is empty: every message needs a plain-text part', { field: 'text' });
  if (content.fromName !== undefined && !content.fromName.trim()) throw fail('TEMPLATE_INVALID', 'fromName is empty', { field: 'fromName' });
  const fields = {} as Record<TemplateField, Segment[]>;
  for (const field of templateFields) fields[field] = parseField(fieldText(content, field), field);
  return { content, fields };
}

/**
 * The text the scanner reads for a field: tag markup blanked (fallback text kept), and for HTML the markup, comments,
 * style and script blanked too (alt and title text kept: it is shown). Blanking keeps every offset in place.
 */
export function scannableText(parsed: ParsedTemplate, field: TemplateField): string {
  const text = fieldText(parsed.content, field);
  const chars = text.split('');
  for (const s of parsed.fields[field]) {
    if (s.kind !== 'tag') continue;
    const fallbackStart = s.fallback !== undefined ? s.end - 1 - s.fallback.length : s.end;
    for (let i = s.at.offset; i < s.end; i++) if (i < fallbackStart || i === s.end - 1) chars[i] = ' ';
  }
  if (field === 'html') blankMarkup(text, chars);
  return chars.join('');
}

const visibleAttribute = /\b(?:alt|title)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;

function blankMarkup(text: string, chars: string[]): void {
  const blank = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (chars[i] !== '\n') chars[i] = ' ';
  };
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const amp = text.indexOf('&', i);
    if (lt === -1 && amp === -1) break;
    if (amp !== -1 && (lt === -1 || amp < lt)) {
      const entity = /^&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});/i.exec(text.slice(amp, amp + 40));
      if (entity) blank(amp, amp + entity[0].length);
      i = amp + 1;
      continue;
    }
    const lower = text.slice(lt, lt + 8).toLowerCase();
    let end: number;
    if (lower.startsWith('<!--')) {
      const close = text.indexOf('-->', lt + 4);
      end = close === -1 ? text.length : close + 3;
    } else if (lower.startsWith('<style') || lower.startsWith('<script')) {
      const name = lower.startsWith('<style') ? '</style' : '</script';
      const close = text.toLowerCase().indexOf(name, lt);
      const gt = close === -1 ? -1 : text.indexOf('>', close);
      end = gt === -1 ? text.length : gt + 1;
    } else {
      const gt = text.indexOf('>', lt);
      end = gt === -1 ? text.length : gt + 1;
      if (/^<[a-z]/i.test(lower)) {
        // Keep what a reader sees in alt and title.
        const tag = text.slice(lt, end);
        blank(lt, end);
        visibleAttribute.lastIndex = 0;
        for (;;) {
          const m = visibleAttribute.exec(tag);
          if (!m) break;
          const value = m[1] ?? m[2] ?? '';
          const from = lt + m.index + m[0].length - value.length - 1;
          for (let k = 0; k < value.length; k++) chars[from + k] = text[from + k]!;
        }
        i = end;
        continue;
      }
    }
    blank(lt, end);
    i = end;
  }
}

const maxClass = (a: PhiClass, b: PhiClass): PhiClass => (phiClassRank[b] > phiClassRank[a] ? b : a);

/** Tags used, their PHI classes, scanner findings per field, what is blocked and which delivery modes are allowed. */
export function analyzeTemplate(template: TemplateContent | ParsedTemplate, options: ScanOptions = {}): TemplateAnalysis {
  const parsed = 'fields' in template ? template : parseTemplate(template);
  const tags: TagUse[] = [];
  const findings: FieldFinding[] = [];
  const blocked: TemplateProblem[] = [];
  let phiClass: PhiClass = 'none';
  for (const field of templateFields) {
    if (field === 'fromName' && parsed.content.fromName === undefined) continue;
    const isHeader = headerFields.includes(field);
    for (const s of parsed.fields[field]) {
      if (s.kind !== 'tag') continue;
      const use: TagUse = {
        name: s.tag.name,
        phiClass: s.tag.phiClass,
        field,
        line: s.at.line,
        column: s.at.column,
        hasFallback: s.fallback !== undefined,
      };
      tags.push(use);
      phiClass = maxClass(phiClass, s.tag.phiClass);
      const pcpAsSender = field === 'fromName' && s.tag.name === 'pcp name';
      if (isHeader && s.tag.phiClass !== 'none' && !pcpAsSender) {
        blocked.push({ field, line: use.line, column: use.column, reason: 'phi-tag', tag: s.tag.name });
      }
    }
    const text = scannableText(parsed, field);
    const at = lineIndex(fieldText(parsed.content, field));
    for (const f of scanText(text, options)) {
      const { line, column } = at(f.start);
      findings.push({ ...f, field, line, column });
      phiClass = maxClass(phiClass, f.category === 'clinical' ? 'clinical' : 'identity');
      if (isHeader) blocked.push({ field, line, column, reason: 'phi-finding', kind: f.kind });
    }
  }
  const analysis: TemplateAnalysis = {
    tags,
    tagNames: [...new Set(tags.map((t) => t.name))].sort(),
    findings,
    phiClass,
    phiFree: phiClass === 'none',
    blocked,
    deliveryModes: [],
  };
  analysis.deliveryModes = allowedDeliveryModes(analysis);
  return analysis;
}

/** Clinical content needs a channel that never falls back to a notice over unverified TLS: tls-required or escrow. */
export function allowedDeliveryModes(analysis: Pick<TemplateAnalysis, 'phiClass'>): DeliveryMode[] {
  return analysis.phiClass === 'clinical' ? ['tls-required', 'escrow'] : [...deliveryModes];
}

/** Throws TEMPLATE_PHI_BLOCKED naming the first field and position with PHI in a header. */
export function assertNotBlocked(analysis: TemplateAnalysis): void {
  const first = analysis.blocked[0];
  if (!first) return;
  const what = first.reason === 'phi-tag' ? `the PHI merge tag [${first.tag}]` : `PHI (${first.kind})`;
  throw fail('TEMPLATE_PHI_BLOCKED', `${first.field} holds ${what} at ${first.line}:${first.column}`, {
    field: first.field,
    line: first.line,
    column: first.column,
    problems: analysis.blocked.length,
  });
}

/** Throws DELIVERY_MODE_NOT_ALLOWED when the content's PHI class does not allow `mode`. */
export function assertDeliveryMode(analysis: TemplateAnalysis, mode: DeliveryMode): void {
  if (!(deliveryModes as readonly string[]).includes(mode)) throw fail('BAD_REQUEST', 'unknown delivery mode', { field: 'deliveryMode' });
  if (!analysis.deliveryModes.includes(mode)) {
    throw fail('DELIVERY_MODE_NOT_ALLOWED', `clinical content needs delivery mode ${analysis.deliveryModes.join(' or ')}, not ${mode}`, {
      field: 'deliveryMode',
    });
  }
}
