// A small real FieldCipher for tests: AES-256-GCM with AAD = table/column/row, HMAC-SHA256 blind indexes, random keys.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { FieldCipher, SealContext } from '../../connector/store/cipher.js';
import { fail } from '../../connector/errors.js';

const version = 1;

const aad = (at: SealContext) => Buffer.from(`${at.table}\u0000${at.column}\u0000${at.rowId}`, 'utf8');

/** A cipher under fresh random keys (or the given ones, to reopen what another instance sealed). */
export function createTestCipher(keys: { data?: Buffer; index?: Buffer } = {}): FieldCipher {
  const dataKey = keys.data ?? randomBytes(32);
  const indexKey = keys.index ?? randomBytes(32);
  const open = (sealed: Uint8Array, at: SealContext): Buffer => {
    const buf = Buffer.from(sealed);
    if (buf.length < 1 + 12 + 16 || buf[0] !== version) throw fail('DECRYPT_FAILED', 'sealed value is malformed');
    const decipher = createDecipheriv('aes-256-gcm', dataKey, buf.subarray(1, 13));
    decipher.setAAD(aad(at));
    decipher.setAuthTag(buf.subarray(buf.length - 16));
    try {
      return Buffer.concat([decipher.update(buf.subarray(13, buf.length - 16)), decipher.final()]);
    } catch {
      throw fail('DECRYPT_FAILED', `sealed value in ${at.table}.${at.column} does not open`);
    }
  };
  return {
    seal(plaintext, at) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
      cipher.setAAD(aad(at));
      const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
      return Buffer.concat([Buffer.from([version]), iv, body, cipher.getAuthTag()]);
    },
    open,
    openText: (sealed, at) => open(sealed, at).toString('utf8'),
    blindIndex: (kind, value) => createHmac('sha256', indexKey).update(`${kind}\u0000${value}`).digest(),
  };
}
