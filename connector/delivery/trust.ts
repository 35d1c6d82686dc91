// The certificate authorities delivery trusts: Node's bundled roots plus the extra CAs of config.extraCaFile (added, never replacing).
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/** Passing `ca` to Node replaces its roots, so extra CAs are appended to them. */
export function trustedCas(extra: string | readonly string[] | undefined): string[] {
  const list = extra === undefined ? [] : typeof extra === 'string' ? [extra] : [...extra];
  return [...rootCertificates, ...list];
}

/** Reads a PEM bundle (config.extraCaFile). */
export function loadExtraCa(file: string | undefined): string[] {
  if (!file) return [];
  const text = readFileSync(file, 'utf8');
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

const contexts = new Map<string, SecureContext>();

/**
 * The TLS client context that trusts Node's roots plus `extra` (TLS 1.2 at least), built once per trust
 * list: parsing the ~140 roots for every connection costs tens of milliseconds of CPU.
 */
export function trustContext(extra: string | readonly string[] | undefined): SecureContext {
  const list = extra === undefined ? [] : typeof extra === 'string' ? [extra] : [...extra];
  const key = list.join('\n');
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext({ ca: trustedCas(list), minVersion: 'TLSv1.2' });
    contexts.set(key, context);
  }
  return context;
}
