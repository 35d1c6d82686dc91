// DKIM keys of sender domains: RSA-2048 generated here, the private key sealed under the keyring, opened into a KeyObject for the signer.
import { createPrivateKey, generateKeyPair } from 'node:crypto';
import { createDkimSigner, type DkimSigner } from '../delivery/dkim.js';
import { fail } from '../errors.js';
import type { FieldCipher } from '../store/cipher.js';
import { asBuffer, loadQueries, type Db } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertKey', 'sealKey', 'keyOf'] as const);

const keyAt = (id: string) => ({ table: 'sending_dkim_keys', column: 'private_key_sealed', rowId: id });
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;
const selectorPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface DkimKeyInfo {
  domain: string;
  selector: string;
  /** The TXT record to publish at `<selector>._domainkey.<domain>`. */
  dnsName: string;
  dnsValue: string;
}

function check(domain: string, selector: string): { domain: string; selector: string } {
  const d = domain.trim().toLowerCase();
  const s = selector.trim().toLowerCase();
  if (!domainPattern.test(d)) throw fail('BAD_REQUEST', 'not a domain name', { field: 'domain' });
  if (!selectorPattern.test(s)) throw fail('BAD_REQUEST', 'a DKIM selector is a DNS label', { field: 'selector' });
  return { domain: d, selector: s };
}

const info = (domain: string, selector: string, publicKey: string): DkimKeyInfo => ({
  domain,
  selector,
  dnsName: `${selector}._domainkey.${domain}`,
  dnsValue: `v=DKIM1; k=rsa; p=${publicKey}`,
});

export class DkimKeyStore {
  constructor(private readonly deps: { db: Db; cipher: FieldCipher; clock?: () => Date }) {}

  /** Generates and stores the key of a domain and selector; CONFLICT when one exists (keys are never overwritten). */
  async create(domain: string, selector: string, actor: string): Promise<DkimKeyInfo> {
    const c = check(domain, selector);
    const { publicKey, privateKey } = await new Promise<{ publicKey: string; privateKey: string }>((resolve, reject) =>
      generateKeyPair('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'der' } as never, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }, (err, pub, priv) =>
        err ? reject(err) : resolve({ publicKey: Buffer.from(pub as unknown as Buffer).toString('base64'), privateKey: String(priv) }),
      ),
    );
    return this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<{ id: unknown }>(q.insertKey, [c.domain, c.selector, Buffer.alloc(0), publicKey, actor, (this.deps.clock ?? (() => new Date()))()]);
      if (!row) throw fail('CONFLICT', 'a DKIM key exists for this domain and selector', { field: 'selector' });
      await tx.query(q.sealKey, [row.id, this.deps.cipher.seal(privateKey, keyAt(String(row.id)))]);
      return info(c.domain, c.selector, publicKey);
    });
  }

  async info(domain: string, selector: string): Promise<DkimKeyInfo | undefined> {
    const c = check(domain, selector);
    const [row] = await this.deps.db.query<{ public_key: string }>(q.keyOf, [c.domain, c.selector]);
    return row ? info(c.domain, c.selector, row.public_key) : undefined;
  }

  /** The signer of a domain and selector, or undefined when no key is stored. */
  async signer(domain: string, selector: string): Promise<DkimSigner | undefined> {
    const c = check(domain, selector);
    const [row] = await this.deps.db.query<{ id: unknown; private_key_sealed: Uint8Array }>(q.keyOf, [c.domain, c.selector]);
    if (!row) return undefined;
    const pem = this.deps.cipher.openText(asBuffer(row.private_key_sealed), keyAt(String(row.id)));
    return createDkimSigner({ domainName: c.domain, keySelector: c.selector, privateKey: createPrivateKey(pem) });
  }
}
