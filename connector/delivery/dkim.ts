// DKIM signing (RFC 6376: rsa-sha256, relaxed/relaxed) with an RSA-2048 crypto.KeyObject; the RSA operation runs on libuv's thread pool, off the event loop.
import { createHash, createPrivateKey, sign as rsaSign, type KeyObject } from 'node:crypto';
import { fail } from '../errors.js';

export interface DkimOptions {
  domainName: string;
  keySelector: string;
  /** RSA, at least 2048 bits. A KeyObject is parsed once; a PEM string would be re-parsed for every message. */
  privateKey: KeyObject;
  /** Header fields to sign, in order; the ones a message lacks are skipped. */
  headerFieldNames?: readonly string[];
}

export interface DkimSigner {
  readonly domainName: string;
  readonly keySelector: string;
  /** Returns the message with a DKIM-Signature header prepended. */
  sign(raw: Buffer): Promise<Buffer>;
  /** What the signer signs with, so that a sending thread can sign at the wire (undefined: messages go unsigned). */
  key(): Promise<DkimOptions | undefined>;
}

/** The fields worth protecting: what a reader sees and what RFC 8058 requires be signed. */
const defaultFields = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc', 'mime-version', 'content-type',
  'content-transfer-encoding', 'list-unsubscribe', 'list-unsubscribe-post', 'list-id', 'in-reply-to', 'references',
];

/** Parses a PEM private key once (config or key store) into the KeyObject the signer needs. */
export function dkimKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

/** RFC 6376 §3.4.4 relaxed body: collapse WSP runs, drop trailing WSP, drop trailing empty lines, end in one CRLF. */
export function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.length ? `${lines.join('\r\n')}\r\n` : '';
}

/** RFC 6376 §3.4.2 relaxed header: lower-case name, unfold, collapse WSP, trim. */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trim().toLowerCase();
  const value = field.slice(colon + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim();
  return `${name}:${value}`;
}

function fold(value: string): string {
  // Keep header lines short: break the base64 signature every 72 characters.
  return value.replace(/(.{72})/g, '$1\r\n ').replace(/\r\n $/, '');
}

export function createDkimSigner(options: DkimOptions): DkimSigner {
  const key = options.privateKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') throw fail('INVALID_CONFIG', 'DKIM key must be an RSA private key');
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw fail('INVALID_CONFIG', 'DKIM key must be at least 2048 bits');
  if (!/^[a-z0-9][a-z0-9.-]*$/i.test(options.domainName) || !/^[a-z0-9][a-z0-9._-]*$/i.test(options.keySelector)) {
    throw fail('INVALID_CONFIG', 'DKIM domain or selector is malformed');
  }
  const wanted = (options.headerFieldNames ?? defaultFields).map((f) => f.toLowerCase());
  return {
    domainName: options.domainName,
    keySelector: options.keySelector,
    key: async () => options,
    async sign(raw) {
      // Messages built by the composer are 7-bit/QP/base64: reading them as latin1 keeps every byte as it is.
      const text = raw.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split + 2);
      const body = split < 0 ? '' : text.slice(split + 4);
      const fields = head.split(/\r\n(?![ \t])/).filter(Boolean);
      const byName = new Map<string, string[]>();
      for (const f of fields) {
        const name = f.slice(0, f.indexOf(':')).trim().toLowerCase();
        byName.set(name, [...(byName.get(name) ?? []), f]);
      }
      // Sign the last instance of each field (RFC 6376 §5.4.2), only fields present.
      const signed = wanted.filter((n) => byName.has(n));
      const canonical = signed.map((n) => `${relaxedHeader(byName.get(n)!.at(-1)!)}\r\n`).join('');
      const bh = createHash('sha256').update(relaxedBody(body), 'latin1').digest('base64');
      const t = Math.floor(Date.now() / 1000);
      const unsigned = `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${options.domainName}; q=dns/txt; s=${options.keySelector}; t=${t};\r\n bh=${bh}; h=${signed.join(':')}; b=`;
      const input = Buffer.from(canonical + relaxedHeader(unsigned), 'latin1');
      const signature = await new Promise<Buffer>((resolve, reject) =>
        rsaSign('sha256', input, key, (err, sig) => (err ? reject(err) : resolve(sig))),
      );
      return Buffer.concat([Buffer.from(`${unsigned}${fold(signature.toString('base64'))}\r\n`, 'latin1'), raw]);
    },
  };
}

const signers = new WeakMap<KeyObject, Map<string, DkimSigner>>();

/** What, besides the key, makes two signers differ: domain, selector and the signed fields. */
export function dkimSignerName(options: DkimOptions): string {
  return `${options.domainName}|${options.keySelector}|${(options.headerFieldNames ?? []).join(':')}`;
}

/** One signer per key, domain and selector (a sending thread signs every message of a campaign with the same). */
export function dkimSignerFor(options: DkimOptions): DkimSigner {
  let byName = signers.get(options.privateKey);
  if (!byName) {
    byName = new Map();
    signers.set(options.privateKey, byName);
  }
  const name = dkimSignerName(options);
  let signer = byName.get(name);
  if (!signer) {
    signer = createDkimSigner(options);
    byName.set(name, signer);
  }
  return signer;
}
