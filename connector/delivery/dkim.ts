// DKIM signing (RFC 6376, rsa-sha256, relaxed/relaxed) with an RSA-2048 crypto.KeyObject, through nodemailer's signer.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import DKIM from 'nodemailer/lib/dkim';
import { fail } from '../errors.js';

export interface DkimOptions {
  domainName: string;
  keySelector: string;
  /** RSA, at least 2048 bits. A KeyObject is parsed once; a PEM string would be re-parsed for every message. */
  privateKey: KeyObject;
}

export interface DkimSigner {
  readonly domainName: string;
  readonly keySelector: string;
  /** Returns the message with a DKIM-Signature header prepended. */
  sign(raw: Buffer): Promise<Buffer>;
}

/** Parses a PEM private key once (config or key store) into the KeyObject the signer needs. */
export function dkimKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function createDkimSigner(options: DkimOptions): DkimSigner {
  const key = options.privateKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') throw fail('INVALID_CONFIG', 'DKIM key must be an RSA private key');
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw fail('INVALID_CONFIG', 'DKIM key must be at least 2048 bits');
  if (!/^[a-z0-9][a-z0-9.-]*$/i.test(options.domainName) || !/^[a-z0-9][a-z0-9._-]*$/i.test(options.keySelector)) {
    throw fail('INVALID_CONFIG', 'DKIM domain or selector is malformed');
  }
  const dkim = new DKIM({ domainName: options.domainName, keySelector: options.keySelector, privateKey: key });
  return {
    domainName: options.domainName,
    keySelector: options.keySelector,
    sign: async (raw) => {
      const chunks: Buffer[] = [];
      for await (const chunk of dkim.sign(Readable.from([raw]))) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
  };
}
