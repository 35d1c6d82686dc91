// Rendering: values escaped in HTML, fallbacks, dates in the patient's locale, headers without CR/LF, From on the verified domain.
import { describe, expect, it } from 'vitest';
import { phi } from '../../../fhir/phi.js';
import { compileTemplate, displayName, headerValue, renderMessage } from '../../../connector/compose/render.js';
import type { TemplateContent } from '../../../connector/compose/template.js';
import { practiceContext, syntheticFacts } from './facts-fixture.js';
import { thrown } from '../../support/outreach-error.js';

const template: TemplateContent = {
  subject: 'A note from [practice name]',
  preheader: 'Your care team at [practice name]',
  html: '<html><body><p>Hi [first name|there],</p><p>Next: [next appointment|not booked]</p><a href="[unsubscribe link]">Unsubscribe</a></body></html>',
  text: 'Hi [first name|there],\nNext: [next appointment|not booked]\nUnsubscribe: [unsubscribe link]',
};

describe('rendering', () => {
  it('merges values, puts the preheader first in the body and keeps the From address on the verified domain', () => {
    const m = renderMessage(template, syntheticFacts(), practiceContext);
    expect(m.subject).toBe('A note from Riverside Family Medicine');
    expect(m.preheader).toBe('Your care team at Riverside Family Medicine');
    expect(m.html).toContain('<body><div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">Your care team at Riverside Family Medicine</div><p>Hi Maria,</p>');
    expect(m.text).toBe(
      'Hi Maria,\nNext: Tuesday, December 1, 2026 at 8:30 AM\nUnsubscribe: https://outreach.riverside.example.org/u/tok_123?x=1&y=2',
    );
    expect(m.html).toContain('href="https://outreach.riverside.example.org/u/tok_123?x=1&amp;y=2"');
    expect(m.fromName).toBe('Riverside Outreach');
    expect(m.fromAddress).toBe('outreach@mail.riverside.example.org');
    expect(m.from).toBe('"Riverside Outreach" <outreach@mail.riverside.example.org>');
    expect(m.missingTags).toEqual([]);
    expect(m.phiFree).toBe(false);
  });

  it('HTML-escapes merged values in the HTML part and keeps them as text in the text part', () => {
    const facts = syntheticFacts({ given: phi('<script>alert(1)</script>'), family: phi('O\'Brien & "Sons"') });
    const t = { ...template, html: '<p title="[last name]">[first name] [last name]</p>', text: '[first name] [last name]' };
    const m = renderMessage(t, facts, practiceContext);
    expect(m.html).toBe(
      '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">Your care team at Riverside Family Medicine</div>' +
        '<p title="O&#39;Brien &amp; &quot;Sons&quot;">&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Brien &amp; &quot;Sons&quot;</p>',
    );
    expect(m.text).toBe('<script>alert(1)</script> O\'Brien & "Sons"');
  });

  it('uses the fallback when a value is missing, and reports tags with neither', () => {
    const facts = syntheticFacts({ given: undefined, appointments: [], pcp: undefined });
    const t = { ...template, fromName: 'pcp', text: 'Hi [first name|there], [last name], seen [last appointment date|recently]. [pcp name]' };
    const m = renderMessage(t, facts, practiceContext);
    expect(m.text).toBe('Hi there, Gonzalez, seen March 4, 2026. ');
    expect(m.missingTags).toEqual(['pcp name']);
    expect(m.fromName).toBe('Riverside Outreach');
    expect(renderMessage({ ...t, text: '[first name|]!' }, facts, practiceContext).text).toBe('!');
  });

  it("formats dates and numbers in the patient's language, times in the practice time zone", () => {
    const t = { ...template, html: '', text: '[next appointment] · [next appointment date] · [last a1c date] · [last A1C]' };
    expect(renderMessage(t, syntheticFacts(), practiceContext).text).toBe('Tuesday, December 1, 2026 at 8:30 AM · December 1, 2026 · February 2, 2026 · 7.4%');
    expect(renderMessage(t, syntheticFacts({ language: 'es' }), practiceContext).text).toBe(
      'martes, 1 de diciembre de 2026, 8:30 · 1 de diciembre de 2026 · 2 de febrero de 2026 · 7,4%',
    );
    expect(renderMessage(t, syntheticFacts({ language: 'de-DE' }), practiceContext).text).toBe(
      'Dienstag, 1. Dezember 2026 um 08:30 · 1. Dezember 2026 · 2. Februar 2026 · 7,4%',
    );
    // An unknown language tag falls back to en-US; a plain date never shifts a day across time zones.
    const other = { ...practiceContext, practice: { ...practiceContext.practice, timeZone: 'Pacific/Kiritimati' } };
    expect(renderMessage({ ...t, text: '[last a1c date]' }, syntheticFacts({ language: 'x-not-a-language!' }), other).text).toBe('February 2, 2026');
  });

  it('strips CR, LF and other controls from header values: a PCP name cannot inject a header', () => {
    const facts = syntheticFacts({
      pcp: { reference: 'Practitioner/9', name: 'Dr. Evil\r\nBcc: victim@example.com\r\n\r\n<b>x</b>', source: 'generalPractitioner' },
    });
    const m = renderMessage({ ...template, fromName: 'pcp' }, facts, practiceContext);
    expect(m.fromName).toBe('Dr. Evil Bcc: victim example.com b x /b');
    expect(m.from).toBe('"Dr. Evil Bcc: victim example.com b x /b" <outreach@mail.riverside.example.org>');
    expect(m.from).not.toMatch(/[\r\n]/);
    expect(m.fromAddress).toBe('outreach@mail.riverside.example.org');
    const subject = renderMessage({ ...template, subject: 'Hello\r\nBcc: x@y.z from [practice name]' }, facts, {
      ...practiceContext,
      practice: { ...practiceContext.practice, name: 'Riverside\r\nX-Injected: 1\u2028\u0000' },
    }).subject;
    expect(subject).toBe('Hello Bcc: x@y.z from Riverside X-Injected: 1');
    expect(headerValue('a\u0085b\u2029c\td')).toBe('a b c d');
    expect(displayName('"Dr. Who" <who@tardis>')).toBe('Dr. Who who tardis');
  });

  it('removes line breaks from a merged value in the text part too', () => {
    const m = renderMessage({ ...template, text: 'Hi [first name]!' }, syntheticFacts({ given: phi('Ann\r\nP.S. click evil.example') }), practiceContext);
    expect(m.text).toBe('Hi Ann!');
    const full = renderMessage({ ...template, text: 'Hi [full name]!' }, syntheticFacts({ given: phi('Ann\r\nP.S.'), family: phi('Lee') }), practiceContext);
    expect(full.text).toBe('Hi Ann P.S. Lee!');
  });

  it('refuses a sender address off its verified domain or with a header break', () => {
    const off = { ...practiceContext, sender: { ...practiceContext.sender, address: 'outreach@riverside.example.org.attacker.net' } };
    expect(thrown(() => renderMessage(template, syntheticFacts(), off)).code).toBe('INVALID_CONFIG');
    const crlf = { ...practiceContext, sender: { ...practiceContext.sender, address: 'outreach@riverside.example.org\r\nBcc: x@y' } };
    expect(thrown(() => renderMessage(template, syntheticFacts(), crlf)).code).toBe('INVALID_CONFIG');
    const apex = { ...practiceContext, sender: { ...practiceContext.sender, address: 'hello@riverside.example.org' } };
    expect(renderMessage(template, syntheticFacts(), apex).fromAddress).toBe('hello@riverside.example.org');
  });

  it('refuses to render a template with PHI in the subject, or in a delivery mode its content does not allow', () => {
    expect(thrown(() => renderMessage({ ...template, subject: 'Hi [first name]' }, syntheticFacts(), practiceContext)).code).toBe('TEMPLATE_PHI_BLOCKED');
    expect(thrown(() => renderMessage({ ...template, subject: 'Your HIV results' }, syntheticFacts(), practiceContext)).code).toBe('TEMPLATE_PHI_BLOCKED');
    const clinical = { ...template, text: 'A1C: [last A1C]' };
    expect(thrown(() => renderMessage(clinical, syntheticFacts(), { ...practiceContext, deliveryMode: 'tls-or-escrow' })).code).toBe('DELIVERY_MODE_NOT_ALLOWED');
    expect(renderMessage(clinical, syntheticFacts(), { ...practiceContext, deliveryMode: 'escrow' }).text).toBe('A1C: 7.4%');
  });

  it('compiles once and renders many recipients, marking PHI-free content', () => {
    const compiled = compileTemplate({ subject: 'Flu shots', preheader: '', html: '', text: 'Flu shots at [practice name]. [unsubscribe link]' });
    expect(compiled.analysis.phiFree).toBe(true);
    const a = compiled.render(syntheticFacts(), practiceContext);
    const b = compiled.render(undefined, { ...practiceContext, links: { unsubscribe: 'https://o.example.org/u/2' } });
    expect(a.phiFree && b.phiFree).toBe(true);
    expect(b.text).toBe('Flu shots at Riverside Family Medicine. https://o.example.org/u/2');
    expect(a.html).toBe('');
  });
});
