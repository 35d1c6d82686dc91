// The wire builder: what a standard parser reads back (names, words, quoted-printable, IDNA), header injection, the boundary, and a DKIM signature that verifies.
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { createDkimSigner } from '../../../connector/delivery/dkim.js';
import { buildWireMessage, type RenderedMessage } from '../../../connector/delivery/mime.js';
import { verifyDkim } from '../../support/dkim-check.js';
import { rejected } from '../../support/outreach-error.js';
import { testDkimKey } from '../../support/test-ca.js';

const base: RenderedMessage = { from: 'Riverside Clinic <care@clinic.test>', to: 'patient@example.test', subject: 'Your visit', text: 'Hello.', phiFree: false };
const wire = async (m: Partial<RenderedMessage>, headers?: Record<string, string>) =>
  (await buildWireMessage({ ...base, ...m }, { messageId: '<m1@clinic.test>', date: new Date('2026-01-02T03:04:05Z'), ...(headers ? { headers } : {}) })).toString('utf8');

describe('buildWireMessage', () => {
  it('writes what a standard parser reads back exactly: encoded names and subject, quoted-printable bodies, an IDNA domain', async () => {
    const text = 'Hello José,\nline two = equals\n.a leading dot\n' + 'x'.repeat(200) + '\ntrailing space \n';
    const html = '<p>Hello José</p>\n<a href="https://clinic.test/book?a=1&amp;b=2">Book</a>';
    const raw = await wire({
      from: 'Dr. Zoë Müller, MD <care@clinic.test>',
      to: 'Patient Ünïcode <p1@bücher.test>',
      subject: 'Your visit — Grüße, and a subject long enough that the header has to be folded over two lines',
      text,
      html,
      replyTo: '"Front desk" <desk@clinic.test>',
    });
    // Only 7-bit on the wire, no line over 78 characters.
    expect(raw).toMatch(/^[\x00-\x7f]*$/);
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(raw).not.toMatch(/[^\r]\n/);
    const parsed = await simpleParser(raw);
    expect(parsed.from?.value).toEqual([{ address: 'care@clinic.test', name: 'Dr. Zoë Müller, MD' }]);
    expect(raw).toContain('<p1@xn--bcher-kva.test>');
    expect(parsed.replyTo?.value).toEqual([{ address: 'desk@clinic.test', name: 'Front desk' }]);
    expect(parsed.subject).toBe('Your visit — Grüße, and a subject long enough that the header has to be folded over two lines');
    expect(parsed.text).toBe(text);
    expect(parsed.html).toBe(html);
    expect(parsed.messageId).toBe('<m1@clinic.test>');
    expect(parsed.date?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(parsed.headers.get('mime-version')).toBe('1.0');
  });

  it('quotes a display name with specials and leaves a plain one bare', async () => {
    expect(await wire({ from: 'Dr. Imaginary Osei <care@clinic.test>' })).toMatch(/^From: "Dr\. Imaginary Osei" <care@clinic\.test>\r$/m);
    expect(await wire({ from: 'Riverside Clinic <care@clinic.test>' })).toMatch(/^From: Riverside Clinic <care@clinic\.test>\r$/m);
    const quoted = await simpleParser(await wire({ from: '"Ann \\"Nan\\" Lee" <care@clinic.test>' }));
    expect(quoted.from?.value[0]?.name).toBe('Ann "Nan" Lee');
  });

  it('carries one-click unsubscribe and extra headers, and strips CR/LF so no header can be injected', async () => {
    const raw = (
      await buildWireMessage(
        { ...base, subject: 'Hi\r\nBcc: victim@example.test' },
        { messageId: '<m2@clinic.test>', unsubscribeUrl: 'https://outreach.clinic.test/u/tok', headers: { 'X-Campaign': 'c1\r\nX-Evil: 1' } },
      )
    ).toString();
    expect(raw).toMatch(/^List-Unsubscribe: <https:\/\/outreach\.clinic\.test\/u\/tok>\r$/m);
    expect(raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    expect(raw).not.toMatch(/^Bcc:/m);
    expect(raw).not.toMatch(/^X-Evil:/m);
    expect(raw).toMatch(/^Subject: Hi Bcc: victim@example\.test\r$/m);
  });

  it('refuses a bad header name, an address without a domain and a local part that needs SMTPUTF8, naming the field', async () => {
    const badName = await rejected(wire({}, { 'Bad Name': 'x' }));
    expect([badName.code, badName.details]).toEqual(['BAD_REQUEST', { field: 'headers' }]);
    const noDomain = await rejected(wire({ to: 'not-an-address' }));
    expect([noDomain.code, noDomain.message, noDomain.details]).toEqual(['BAD_REQUEST', 'to is not an email address', { field: 'to' }]);
    const utf8 = await rejected(wire({ to: 'jösé@example.test' }));
    expect([utf8.code, utf8.message]).toEqual(['BAD_REQUEST', 'to cannot be sent without SMTPUTF8']);
  });

  it('uses a boundary no quoted-printable body can contain, new for every message', async () => {
    const a = await wire({ html: '<p>--=_outreach_ looks like a boundary</p>' });
    const b = await wire({ html: '<p>x</p>' });
    const boundary = (raw: string) => /boundary="([^"]+)"/.exec(raw)![1]!;
    expect(boundary(a)).not.toBe(boundary(b));
    expect(a.split(`--${boundary(a)}`)).toHaveLength(4);
    expect((await simpleParser(a)).html).toBe('<p>--=_outreach_ looks like a boundary</p>');
  });

  it('signs with DKIM so that an independent verifier accepts the signature', async () => {
    const { privateKey, publicKey } = testDkimKey();
    const dkim = createDkimSigner({ domainName: 'clinic.test', keySelector: 's1', privateKey });
    const raw = await buildWireMessage(
      { ...base, from: 'Dr. Zoë Müller <care@clinic.test>', subject: 'Grüße', html: '<p>Hi</p>' },
      { messageId: '<m3@clinic.test>', unsubscribeUrl: 'https://outreach.clinic.test/u/tok' },
      dkim,
    );
    const tags = verifyDkim(raw.toString('latin1'), publicKey);
    expect(tags.d).toBe('clinic.test');
    expect(tags.h!.split(':')).toEqual(expect.arrayContaining(['from', 'to', 'subject', 'list-unsubscribe', 'list-unsubscribe-post']));
  });
});
