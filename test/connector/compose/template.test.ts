// Templates: merge-tag parsing with positions, the PHI analysis, the header-field block and the delivery-mode rules.
import { describe, expect, it } from 'vitest';
import { deliveryModes as deliveryPolicyModes } from '../../../connector/delivery/tls-policy.js';
import { mergeTagCatalog, mergeTags } from '../../../connector/compose/merge-tags.js';
import {
  allowedDeliveryModes,
  analyzeTemplate,
  assertDeliveryMode,
  assertNotBlocked,
  deliveryModes,
  parseTemplate,
  scannableText,
  type TemplateContent,
} from '../../../connector/compose/template.js';
import { thrown } from '../../support/outreach-error.js';

const base: TemplateContent = {
  subject: 'Flu shots at [practice name]',
  preheader: 'Walk in any weekday',
  html: '<p>Hi [first name|there],</p><p>Flu shots are here. <a href="[unsubscribe link]">Unsubscribe</a></p>',
  text: 'Hi [first name|there],\nFlu shots are here.\nUnsubscribe: [unsubscribe link]',
};

describe('template parsing', () => {
  it('names the field and line:column of an unknown tag, and suggests the nearest registered one', () => {
    const err = thrown(() => parseTemplate({ ...base, text: 'Hello,\n  see you [nxt appointment] soon' }));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.message).toBe('unknown merge tag in text at 2:11 (did you mean [next appointment]?); write [[ for a literal bracket');
    expect(err.details).toMatchObject({ field: 'text', line: 2, column: 11 });
    const html = thrown(() => parseTemplate({ ...base, html: '<p>\n<b>[Patient Surname]</b>' }));
    expect(html.message).toMatch(/^unknown merge tag in html at 2:4;/);
    expect(html.message).not.toContain('Surname');
    expect(thrown(() => parseTemplate({ ...base, subject: '[x]' })).details).toMatchObject({ field: 'subject', line: 1, column: 1 });
  });

  it('accepts tags in any case and spacing, fallbacks, escaped brackets and Outlook conditional comments', () => {
    const parsed = parseTemplate({
      ...base,
      html: '<style>a[href] { color: red }</style><!--[if mso]><table><![endif]--><p>[ First  Name | friend ] [[sic] [last A1C|n/a]</p>',
    });
    const segments = parsed.fields.html;
    expect(segments.filter((s) => s.kind === 'tag').map((s) => s.kind === 'tag' && [s.tag.name, s.fallback])).toEqual([
      ['first name', ' friend '],
      ['last a1c', 'n/a'],
    ]);
    expect(segments.filter((s) => s.kind === 'literal').map((s) => s.kind === 'literal' && s.text).join('|')).toBe(
      '<style>a[href] { color: red }</style><!--[if mso]><table><![endif]--><p>| [sic] |</p>',
    );
  });

  it('refuses a missing subject or text part and over-long header fields, naming the field', () => {
    expect(thrown(() => parseTemplate({ ...base, subject: '  ' })).details).toEqual({ field: 'subject' });
    expect(thrown(() => parseTemplate({ ...base, text: '' })).details).toEqual({ field: 'text' });
    expect(thrown(() => parseTemplate({ ...base, preheader: 'x'.repeat(256) })).details).toEqual({ field: 'preheader' });
    expect(thrown(() => parseTemplate({ ...base, fromName: ' ' })).details).toEqual({ field: 'fromName' });
  });

  it('blanks tag markup and HTML markup for the scanner without moving any offset', () => {
    const parsed = parseTemplate({
      ...base,
      html: '<td style="width:12345678px">Your [last A1C|unknown] &amp; <img alt="insulin" src="/i/55512345.png"></td>',
    });
    const text = scannableText(parsed, 'html');
    expect(text).toHaveLength(parsed.content.html.length);
    expect(text.replace(/\s+/g, ' ').trim()).toBe('Your unknown insulin');
  });
});

describe('template analysis', () => {
  it('lists tags with their PHI classes and positions, and finds PHI in each field', () => {
    const a = analyzeTemplate({
      ...base,
      fromName: 'pcp',
      text: 'Hi [first name],\nyour last A1C was [last A1C]. Questions about metformin? Call [practice phone].',
    });
    expect(a.tagNames).toEqual(['first name', 'last a1c', 'pcp name', 'practice name', 'practice phone', 'unsubscribe link']);
    expect(a.tags.find((t) => t.name === 'last a1c')).toEqual({ name: 'last a1c', phiClass: 'clinical', field: 'text', line: 2, column: 19, hasFallback: false });
    expect(a.findings.map((f) => [f.field, f.kind, f.line, f.column])).toEqual([
      ['text', 'condition', 2, 11],
      ['text', 'medication', 2, 47],
    ]);
    expect(a.phiClass).toBe('clinical');
    expect(a.phiFree).toBe(false);
    expect(a.blocked).toEqual([]);
  });

  it('blocks PHI found in the subject, with the field and position', () => {
    const a = analyzeTemplate({ ...base, subject: 'Your diabetes check-up is due' });
    expect(a.blocked).toEqual([{ field: 'subject', line: 1, column: 6, reason: 'phi-finding', kind: 'condition' }]);
    const err = thrown(() => assertNotBlocked(a));
    expect(err.code).toBe('TEMPLATE_PHI_BLOCKED');
    expect(err.message).toBe('subject holds PHI (condition) at 1:6');
    expect(err.message).not.toContain('diabetes');
  });

  it('blocks a PHI merge tag in the subject or preheader, but not the practice name', () => {
    expect(analyzeTemplate({ ...base, subject: 'Hi [first name], flu shots are here' }).blocked).toEqual([
      { field: 'subject', line: 1, column: 4, reason: 'phi-tag', tag: 'first name' },
    ]);
    expect(analyzeTemplate({ ...base, preheader: 'Last result: [last A1C]' }).blocked[0]).toMatchObject({ field: 'preheader', reason: 'phi-tag', tag: 'last a1c' });
    expect(thrown(() => assertNotBlocked(analyzeTemplate({ ...base, preheader: 'See you [next appointment]' }))).message).toBe(
      'preheader holds the PHI merge tag [next appointment] at 1:9',
    );
    expect(analyzeTemplate(base).blocked).toEqual([]);
  });

  it('lets the PCP be the From name but blocks other PHI there', () => {
    expect(analyzeTemplate({ ...base, fromName: 'pcp' }).blocked).toEqual([]);
    expect(analyzeTemplate({ ...base, fromName: '[pcp name] at [practice name]' }).blocked).toEqual([]);
    expect(analyzeTemplate({ ...base, fromName: '[first name] [last name]' }).blocked.map((b) => b.tag)).toEqual(['first name', 'last name']);
    expect(analyzeTemplate({ ...base, fromName: 'Diabetes Care Team' }).blocked).toMatchObject([{ field: 'fromName', reason: 'phi-finding', kind: 'condition' }]);
  });

  it('allows tls-required and escrow only when a clinical tag is used', () => {
    const clinical = analyzeTemplate({ ...base, text: 'Your last A1C: [last A1C|not on file]' });
    expect(clinical.deliveryModes).toEqual(['tls-required', 'escrow']);
    expect(allowedDeliveryModes(clinical)).toEqual(['tls-required', 'escrow']);
    const err = thrown(() => assertDeliveryMode(clinical, 'tls-or-escrow'));
    expect(err.code).toBe('DELIVERY_MODE_NOT_ALLOWED');
    expect(() => assertDeliveryMode(clinical, 'tls-required')).not.toThrow();
    expect(() => assertDeliveryMode(clinical, 'escrow')).not.toThrow();
    expect(thrown(() => assertDeliveryMode(clinical, 'plaintext' as never)).code).toBe('BAD_REQUEST');
  });

  it('clears content for opportunistic delivery only with no finding and no PHI tag', () => {
    const clean = analyzeTemplate({ ...base, html: '<p>Flu shots are here.</p>', text: 'Flu shots are here. [practice phone]' });
    expect(clean).toMatchObject({ phiClass: 'none', phiFree: true, deliveryModes: ['tls-required', 'tls-or-escrow', 'escrow'] });
    const identity = analyzeTemplate(base);
    expect(identity).toMatchObject({ phiClass: 'identity', phiFree: false, deliveryModes: ['tls-required', 'tls-or-escrow', 'escrow'] });
    const finding = analyzeTemplate({ ...base, html: '', text: 'Flu shots are here. Questions? Write to jordan.reyes@gmail.com' });
    expect(finding).toMatchObject({ phiClass: 'identity', phiFree: false });
    const clinicalText = analyzeTemplate({ ...base, html: '', text: 'Living with COPD? Flu shots matter more.' });
    expect(clinicalText).toMatchObject({ phiClass: 'clinical', phiFree: false, deliveryModes: ['tls-required', 'escrow'] });
  });

  it('exempts the practice contact details given to the scanner', () => {
    const content = { ...base, html: '', text: 'Call 555-201-3344 or visit 42 Oak Street.' };
    expect(analyzeTemplate(content).phiFree).toBe(false);
    expect(analyzeTemplate(content, { allow: { phones: ['5552013344'], addresses: ['42 Oak St'] } }).phiFree).toBe(true);
  });
});

describe('merge-tag registry', () => {
  it('gives every tag a class and an example, and uses the delivery modes of the TLS policy', () => {
    expect(deliveryModes).toEqual(deliveryPolicyModes);
    expect(new Set(mergeTags.map((t) => t.name)).size).toBe(mergeTags.length);
    for (const t of mergeTagCatalog()) {
      expect(['none', 'identity', 'clinical']).toContain(t.phiClass);
      expect(t.example.length).toBeGreaterThan(0);
      expect(t.name).toBe(t.name.toLowerCase());
    }
    const byClass = (c: string) => mergeTags.filter((t) => t.phiClass === c).map((t) => t.name);
    expect(byClass('clinical')).toEqual(expect.arrayContaining(['last a1c']));
    expect(byClass('identity')).toEqual(expect.arrayContaining(['first name', 'last name', 'pcp name', 'last appointment date', 'next appointment']));
    expect(byClass('none')).toEqual(expect.arrayContaining(['practice name', 'practice phone', 'unsubscribe link']));
  });
});
