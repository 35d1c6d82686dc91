// The proof kept for every delivery: protocol, cipher, certificate subject and issuer, whether it was verified, and the MTA-STS and DANE verdicts.
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import { matchTlsa, usableTlsa, type DaneResult } from './dane.js';
import type { TlsaRecord } from './dns-client.js';
import type { MtaStsResult } from './mta-sts.js';
import { trustContext } from './trust.js';

export interface PeerEvidence {
  protocol: string | null;
  cipher: string | null;
  certSubject: string | null;
  certIssuer: string | null;
  certFingerprint256: string | null;
  certValidTo: string | null;
  /** True only when the chain verified against our trust store, the name matched and DANE (if published) matched. */
  verified: boolean;
  /** Why it is not verified (OpenSSL code, ERR_TLS_CERT_ALTNAME_INVALID, DANE_MISMATCH), or why there is no TLS. */
  failure?: string;
}

export interface TlsEvidence extends PeerEvidence {
  /** The MX host name (or the relay host) the message went to. */
  mx: string;
  /** How the connection was made: verified STARTTLS, opportunistic, or through the relay. */
  route: 'verified' | 'opportunistic' | 'relay';
  mtaSts: MtaStsResult;
  dane: DaneResult;
}

export const noTls: PeerEvidence = {
  protocol: null, cipher: null, certSubject: null, certIssuer: null, certFingerprint256: null, certValidTo: null, verified: false,
};

function dn(fields: Record<string, string | string[]> | undefined): string | null {
  if (!fields) return null;
  return Object.entries(fields).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`).join(', ') || null;
}

/** Reads the negotiated parameters and the peer certificate off a live TLS socket. */
export function describePeer(socket: TLSSocket, verified: boolean, failure?: string): PeerEvidence {
  const cert = socket.getPeerCertificate(false) as PeerCertificate | Record<string, never>;
  const hasCert = Boolean(cert && 'raw' in cert && cert.raw);
  return {
    protocol: socket.getProtocol() ?? null,
    cipher: socket.getCipher()?.name ?? null,
    certSubject: hasCert ? dn((cert as PeerCertificate).subject as never) : null,
    certIssuer: hasCert ? dn((cert as PeerCertificate).issuer as never) : null,
    certFingerprint256: hasCert ? (cert as PeerCertificate).fingerprint256 : null,
    certValidTo: hasCert ? (cert as PeerCertificate).valid_to : null,
    verified,
    ...(failure ? { failure } : {}),
  };
}

export interface VerifiedTlsOptions {
  servername: string;
  /** Extra CAs (config.extraCaFile), appended to Node's roots. */
  ca?: readonly string[];
  /** TLSA records published for this MX; when usable ones exist the certificate must match one. */
  tlsa?: readonly TlsaRecord[];
  /** Called with the DANE verdict of each handshake that got that far. */
  onDane?: (result: DaneResult) => void;
}

/**
 * TLS options for a connection that may carry PHI: chain verified against our trust store, the MX name
 * checked, TLS 1.2 or newer, and DANE checked on top. Never relaxed.
 */
export function verifiedTlsOptions(options: VerifiedTlsOptions): ConnectionOptions {
  const usable = usableTlsa(options.tlsa ?? []);
  return {
    // SNI carries names only (RFC 6066); an address-literal relay is still checked against the certificate's IP SANs below.
    ...(isIP(options.servername) ? {} : { servername: options.servername }),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ...(options.ca && options.ca.length ? { secureContext: trustContext(options.ca) } : {}),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      // Check the MX name we meant, not whatever name the connect target carries.
      const nameError = checkServerIdentity(options.servername, cert);
      if (nameError) return nameError;
      if (options.tlsa && options.tlsa.length) {
        const verdict = matchTlsa(options.tlsa, cert as DetailedPeerCertificate);
        options.onDane?.(verdict);
        if (usable.length && verdict.status !== 'matched') {
          return Object.assign(new Error('certificate does not match the TLSA records'), { code: 'DANE_MISMATCH' });
        }
      }
      return undefined;
    },
  };
}

/** Sorts a TLS failure into the few reasons the policy and the evidence speak of. */
export function tlsFailureReason(err: unknown): string {
  const code = String((err as { code?: string }).code ?? '');
  const msg = String((err as { message?: string }).message ?? '');
  if (code === 'CERT_HAS_EXPIRED' || /expired/i.test(msg)) return 'cert-expired';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /altnames|Hostname\/IP does not match/i.test(msg)) return 'cert-hostname';
  if (code === 'DANE_MISMATCH' || /TLSA/.test(msg)) return 'dane-mismatch';
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|self[- ]signed|unable to verify/i.test(code + ' ' + msg)) return 'cert-untrusted';
  return 'handshake-failed';
}
