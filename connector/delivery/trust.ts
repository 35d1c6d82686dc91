// The certificate authorities delivery trusts: Node's bundled roots plus the extra CAs of config.extraCaFile (added, never replacing).
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

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
