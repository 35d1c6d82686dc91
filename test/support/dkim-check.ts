// An independent DKIM check for tests (RFC 6376 relaxed/relaxed, rsa-sha256): body hash and signature over the signed headers.
import { createHash, createPublicKey, createVerify, type KeyObject } from 'node:crypto';
import { expect } from 'vitest';

/** The public key a DKIM DNS record value publishes (`v=DKIM1; k=rsa; p=...`). */
export function dkimRecordKey(dnsValue: string): KeyObject {
  const p = /p=([A-Za-z0-9+/=]+)/.exec(dnsValue)![1]!;
  return createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
}

/** Checks the message's DKIM-Signature against `publicKey` (failing the test when it does not verify); returns its tags. */
export function verifyDkim(raw: string, publicKey: KeyObject): Record<string, string> {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split + 2);
  const body = raw.slice(split + 4);
  const fields = head.split(/\r\n(?=[^ \t])/).filter(Boolean).map((f) => f.replace(/\r\n$/, ''));
  const sigField = fields.find((f) => /^dkim-signature:/i.test(f))!;
  const tags = Object.fromEntries(
    sigField.slice(sigField.indexOf(':') + 1).replace(/\s+/g, '').split(';').filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
  ) as Record<string, string>;
  expect(tags.a).toBe('rsa-sha256');
  expect(tags.c).toBe('relaxed/relaxed');
  const relaxBody = body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, '')).join('\r\n').replace(/(\r\n)*$/, '\r\n');
  expect(createHash('sha256').update(relaxBody).digest('base64')).toBe(tags.bh);
  const relaxHeader = (f: string) => {
    const i = f.indexOf(':');
    return `${f.slice(0, i).trim().toLowerCase()}:${f.slice(i + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`;
  };
  const pool = [...fields];
  // Signed names are matched bottom-up; a name with no (more) field in the message adds nothing (RFC 6376 5.4.2).
  const signed = tags.h!.split(':').map((name) => {
    for (let i = pool.length - 1; i >= 0; i--) {
      if (pool[i]!.slice(0, pool[i]!.indexOf(':')).trim().toLowerCase() === name.toLowerCase()) return relaxHeader(pool.splice(i, 1)[0]!);
    }
    return undefined;
  }).filter((x): x is string => x !== undefined);
  const sigNoB = relaxHeader(sigField).replace(/b=[^;]*$/, 'b=').replace(/b=[^;]*;/, (m) => (m.startsWith('bh=') ? m : 'b=;'));
  const input = signed.map((h) => `${h}\r\n`).join('') + sigNoB;
  expect(createVerify('RSA-SHA256').update(input).verify(publicKey, tags.b!, 'base64')).toBe(true);
  return tags;
}
