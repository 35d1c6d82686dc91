// The demo CA (and the tests' CA): a throw-away certificate authority and leaf certificates (valid, expired, wrong host, self-signed) that the demo and the tests trust explicitly, never by disabling verification.
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

export interface TestCert {
  /** PEM private key of the leaf. */
  key: string;
  /** PEM certificate (leaf only). */
  cert: string;
  /** DER of the certificate. */
  der: Buffer;
  /** DER of the SubjectPublicKeyInfo (what DANE selector 1 hashes). */
  spki: Buffer;
}

export interface TestCa {
  /** PEM of the CA certificate: pass it as `ca` to trust this CA. */
  cert: string;
  der: Buffer;
  spki: Buffer;
  /** A leaf for `hostnames` signed by the CA, valid now. */
  leaf(hostnames: string[]): TestCert;
  /** A leaf signed by the CA whose validity ended yesterday. */
  expired(hostnames: string[]): TestCert;
  /** A leaf that names itself as issuer and is signed with its own key (not trusted by anyone). */
  selfSigned(hostnames: string[]): TestCert;
}

interface KeyPair {
  privatePem: string;
  publicPem: string;
  spki: Buffer;
}

// RSA key generation dominates the cost of a certificate: two keys per process, reused by every certificate.
const keyCache = new Map<string, KeyPair>();
function keyPair(slot: 'ca' | 'leaf'): KeyPair {
  let pair = keyCache.get(slot);
  if (!pair) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    pair = {
      privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      spki: publicKey.export({ type: 'spki', format: 'der' }),
    };
    keyCache.set(slot, pair);
  }
  return pair;
}

let serial = 1;
function issue(options: {
  subjectCn: string;
  hostnames: string[];
  subjectKey: KeyPair;
  issuer: forge.pki.CertificateField[];
  signingKey: KeyPair;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
}): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(options.subjectKey.publicPem);
  // DER INTEGERs must be minimal and positive: lead with a non-zero nibble below 8.
  cert.serialNumber = `${(serial++ % 7) + 1}${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = options.notBefore;
  cert.validity.notAfter = options.notAfter;
  cert.setSubject([{ name: 'commonName', value: options.subjectCn }, { name: 'organizationName', value: 'Secure Outreach Test' }]);
  cert.setIssuer(options.issuer);
  const extensions: unknown[] = [
    { name: 'basicConstraints', cA: options.ca, critical: true },
    options.ca
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (!options.ca) {
    extensions.push({ name: 'extKeyUsage', serverAuth: true });
    extensions.push({ name: 'subjectAltName', altNames: options.hostnames.map((h) => (/^[\d.]+$/.test(h) ? { type: 7, ip: h } : { type: 2, value: h })) });
  }
  cert.setExtensions(extensions);
  cert.sign(forge.pki.privateKeyFromPem(options.signingKey.privatePem), forge.md.sha256.create());
  return cert;
}

function toTestCert(cert: forge.pki.Certificate, key: KeyPair): TestCert {
  const pem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { key: key.privatePem, cert: pem, der, spki: key.spki };
}

const day = 86_400_000;

/** Creates a CA (its key is shared by every CA made in this process). */
export function createTestCa(name = 'Secure Outreach Test CA'): TestCa {
  const caKey = keyPair('ca');
  const leafKey = keyPair('leaf');
  const now = Date.now();
  const caSubject = [{ name: 'commonName', value: name }, { name: 'organizationName', value: 'Secure Outreach Test' }];
  const caCert = issue({
    subjectCn: name, hostnames: [], subjectKey: caKey, issuer: caSubject, signingKey: caKey,
    notBefore: new Date(now - day), notAfter: new Date(now + 365 * day), ca: true,
  });
  const ca = toTestCert(caCert, caKey);
  const leafFrom = (hostnames: string[], notBefore: Date, notAfter: Date) =>
    toTestCert(
      issue({ subjectCn: hostnames[0]!, hostnames, subjectKey: leafKey, issuer: caCert.subject.attributes, signingKey: caKey, notBefore, notAfter, ca: false }),
      leafKey,
    );
  return {
    cert: ca.cert,
    der: ca.der,
    spki: ca.spki,
    leaf: (hostnames) => leafFrom(hostnames, new Date(now - day), new Date(now + 90 * day)),
    expired: (hostnames) => leafFrom(hostnames, new Date(now - 30 * day), new Date(now - day)),
    selfSigned: (hostnames) => {
      const subject = [{ name: 'commonName', value: hostnames[0]! }, { name: 'organizationName', value: 'Secure Outreach Test' }];
      return toTestCert(
        issue({ subjectCn: hostnames[0]!, hostnames, subjectKey: leafKey, issuer: subject, signingKey: leafKey, notBefore: new Date(now - day), notAfter: new Date(now + 90 * day), ca: false }),
        leafKey,
      );
    },
  };
}

/** SHA-256 or SHA-512 of a DER blob, hex (the TLSA certificate association data). */
export function digestHex(der: Buffer, algorithm: 'sha256' | 'sha512'): string {
  return createHash(algorithm).update(der).digest('hex');
}

/** A fresh RSA-2048 key for DKIM tests (cached: one per process). */
let dkimKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;
export function testDkimKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  dkimKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return dkimKey;
}
