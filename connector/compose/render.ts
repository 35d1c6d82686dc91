// Rendering at dispatch, in memory: merge values HTML-escaped in HTML, header values stripped of CR/LF, From on the verified domain.
import { fail } from '../errors.js';
import { phi, type Phi } from '../../fhir/phi.js';
import type { PatientFacts } from '../../fhir/patient-facts.js';
import { formatContext, type FormatContext, type MergeContext } from './merge-tags.js';
import type { ScanOptions } from './phi-scanner.js';
import {
  analyzeTemplate,
  assertDeliveryMode,
  assertNotBlocked,
  parseTemplate,
  type DeliveryMode,
  type ParsedTemplate,
  type Segment,
  type TemplateAnalysis,
  type TemplateContent,
} from './template.js';

export interface RenderContext extends MergeContext {
  /** When given, the template's analysis must allow it (DELIVERY_MODE_NOT_ALLOWED otherwise). */
  deliveryMode?: DeliveryMode;
}

/** One recipient's message. Body and From name are PHI-branded: they are personal, whatever the tags. */
export interface ComposedMessage {
  /** Header-safe and PHI-free (the analysis blocks PHI in the subject). */
  subject: string;
  preheader: string;
  /** The HTML part with the preheader as its hidden first block; empty when the template has no HTML. */
  html: Phi<string>;
  text: Phi<string>;
  fromName: Phi<string>;
  /** Always the sender's verified address. */
  fromAddress: string;
  /** The From header value: `"name" <address>`. */
  from: Phi<string>;
  /** No finding and no PHI tag: delivery may send it without verified TLS (tls-or-escrow only). */
  phiFree: boolean;
  /** Tags that had no value and no fallback, rendered empty. */
  missingTags: string[];
}

export interface CompiledTemplate {
  parsed: ParsedTemplate;
  analysis: TemplateAnalysis;
  render(facts: PatientFacts | undefined, context: RenderContext): ComposedMessage;
}

const htmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => htmlEscapes[c]!);
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: none belongs in a merged value or a header.
const controls = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** A header value: CR, LF and every other control character removed (they become spaces), whitespace collapsed. */
export function headerValue(value: string): string {
  return value.replace(controls, ' ').replace(/\s+/g, ' ').trim();
}

/** A From display name: a header value without the characters that could forge an address (`" < > @ \`). */
export function displayName(value: string): string {
  return headerValue(value.replace(/["<>@\\]/g, ' ')).slice(0, 100).trim();
}

function assertSender(context: MergeContext): string {
  const address = context.sender.address.trim();
  const domain = context.sender.verifiedDomain.trim().toLowerCase();
  const m = /^[^\s@<>"(),;:\\]+@([A-Za-z0-9.-]+)$/.exec(address);
  if (!m || headerValue(address) !== address) throw fail('INVALID_CONFIG', 'sender address is not a valid address', { field: 'sender.address' });
  const host = m[1]!.toLowerCase();
  if (!domain || (host !== domain && !host.endsWith(`.${domain}`))) {
    throw fail('INVALID_CONFIG', 'sender address is not on its verified domain', { field: 'sender.address' });
  }
  return address;
}

type Escape = 'html' | 'text' | 'header';

function renderSegments(segments: Segment[], facts: PatientFacts | undefined, ctx: FormatContext, escape: Escape, missing: Set<string>): string {
  let out = '';
  for (const s of segments) {
    if (s.kind === 'literal') {
      out += s.text;
      continue;
    }
    let value = s.tag.format(facts, ctx);
    // A merged value is one line of text: no markup, no line breaks, no controls.
    if (value !== undefined) value = headerValue(value);
    if (!value) {
      if (s.fallback !== undefined) value = headerValue(s.fallback);
      else {
        missing.add(s.tag.name);
        value = '';
      }
    }
    out += escape === 'html' ? escapeHtml(value) : value;
  }
  return out;
}

function withPreheader(html: string, preheader: string): string {
  if (!html || !preheader) return html;
  const block = `<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">${escapeHtml(preheader)}</div>`;
  const body = /<body\b[^>]*>/i.exec(html);
  return body ? html.slice(0, body.index + body[0].length) + block + html.slice(body.index + body[0].length) : block + html;
}

/**
 * Parses and analyses once, then renders any number of recipients. Throws TEMPLATE_INVALID for an unknown tag and
 * TEMPLATE_PHI_BLOCKED for PHI in a header field.
 */
export function compileTemplate(template: TemplateContent, scan: ScanOptions = {}): CompiledTemplate {
  const parsed = parseTemplate(template);
  const analysis = analyzeTemplate(parsed, scan);
  assertNotBlocked(analysis);
  return {
    parsed,
    analysis,
    render(facts, context) {
      if (context.deliveryMode) assertDeliveryMode(analysis, context.deliveryMode);
      const fromAddress = assertSender(context);
      const ctx = formatContext(facts, context);
      const missing = new Set<string>();
      const subject = headerValue(renderSegments(parsed.fields.subject, facts, ctx, 'header', missing));
      const preheader = headerValue(renderSegments(parsed.fields.preheader, facts, ctx, 'header', missing));
      const html = withPreheader(renderSegments(parsed.fields.html, facts, ctx, 'html', missing), preheader);
      const text = renderSegments(parsed.fields.text, facts, ctx, 'text', missing);
      const named = template.fromName === undefined ? '' : displayName(renderSegments(parsed.fields.fromName, facts, ctx, 'header', new Set()));
      const fromName = named || displayName(context.sender.displayName);
      return {
        subject,
        preheader,
        html: phi(html),
        text: phi(text),
        fromName: phi(fromName),
        fromAddress,
        from: phi(fromName ? `"${fromName}" <${fromAddress}>` : fromAddress),
        phiFree: analysis.phiFree,
        missingTags: [...missing].sort(),
      };
    },
  };
}

/** Renders one recipient's message (parse, analyse, check, merge). For many recipients, compile once. */
export function renderMessage(template: TemplateContent, facts: PatientFacts | undefined, context: RenderContext, scan: ScanOptions = {}): ComposedMessage {
  return compileTemplate(template, scan).render(facts, context);
}
