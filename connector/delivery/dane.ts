// DANE for SMTP (RFC 7672): TLSA look-up for an MX and matching of DANE-EE(3) and DANE-TA(2) records against the presented chain.
//
// What this verifies, honestly: TLSA records are fetched with dns2 over plain UDP and the DNSSEC
// signatures are NOT validated here (no AD-bit trust, no RRSIG chain walk). A TLSA record is therefore
// only as trustworthy as the resolver path that returned it: an attacker who can forge DNS answers can
// also strip or replace the records. To keep that from weakening anything, DANE is enforced *in addition
// to* PKIX verification (the WebPKI roots plus config.extraCaFile), never instead of it: a matching TLSA
// record never makes an untrusted or mis-named certificate acceptable, and a mismatching one blocks
// delivery to that MX. Run against a local validating resolver (config.dnsServers) to get the RFC 7672
// downgrade protection as well.
import { createHash, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { DnsLookup, TlsaRecord } from './dns-client.js';

export type DaneResult =
  | { status: 'none' }
  | { status: 'unusable'; records: number }
  | { status: 'matched'; usage: 2 | 3; records: number }
  | { status: 'mismatch'; records: number }
  | { status: 'lookup-failed' };

/** The TLSA owner name of an SMTP server: `_25._tcp.<mx>`. */
export function tlsaName(mxHost: string, port = 25): string {
  return `_${port}._tcp.${mxHost}`;
}

/** TLSA records for an MX; a failed look-up is reported, not hidden (the caller decides). */
export async function lookupTlsa(dns: DnsLookup, mxHost: string): Promise<{ records: TlsaRecord[]; failed: boolean }> {
  try {
    return { records: await dns.tlsa(tlsaName(mxHost)), failed: false };
  } catch {
    return { records: [], failed: true };
  }
}

/** RFC 7672 §3.1.3: only DANE-TA(2) and DANE-EE(3) are usable for SMTP; PKIX-TA/EE are not. */
export function usableTlsa(records: readonly TlsaRecord[]): TlsaRecord[] {
  return records.filter((r) => (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && r.matchingType <= 2);
}

function spkiOf(der: Buffer): Buffer {
  return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
}

function associationMatches(record: TlsaRecord, certDer: Buffer): boolean {
  const selected = record.selector === 0 ? certDer : spkiOf(certDer);
  const digest =
    record.matchingType === 0 ? selected : createHash(record.matchingType === 1 ? 'sha256' : 'sha512').update(selected).digest();
  return digest.length === record.data.length && digest.equals(record.data);
}

/** The presented chain, leaf first, as DER (Node links issuers; a self-issued root points to itself). */
export function chainOf(cert: PeerCertificate | DetailedPeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let cur: DetailedPeerCertificate | undefined = cert as DetailedPeerCertificate;
  while (cur && cur.raw && out.length < 10) {
    if (out.some((d) => d.equals(cur!.raw))) break;
    out.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return out;
}

/** Matches usable TLSA records: DANE-EE against the leaf, DANE-TA against any issuer in the chain. */
export function matchTlsa(records: readonly TlsaRecord[], cert: PeerCertificate | DetailedPeerCertificate): DaneResult {
  const usable = usableTlsa(records);
  if (records.length === 0) return { status: 'none' };
  if (usable.length === 0) return { status: 'unusable', records: records.length };
  const chain = chainOf(cert);
  for (const r of usable) {
    if (r.usage === 3 && chain[0] && associationMatches(r, chain[0])) return { status: 'matched', usage: 3, records: records.length };
    if (r.usage === 2 && chain.slice(1).some((der) => associationMatches(r, der))) return { status: 'matched', usage: 2, records: records.length };
  }
  return { status: 'mismatch', records: records.length };
}
