// The master key that wraps the data keys: a 0600 key file, OUTREACH_MASTER_KEY, or any KMS behind the same interface.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';

/**
 * Wraps and unwraps data keys. The local master key is one provider; a cloud KMS or Vault transit engine is another.
 * `context` is bound to the wrapped key (AES-GCM AAD or KMS encryption context), so a wrapped key cannot be swapped.
 */
export interface KmsProvider {
  /** Names the wrapping key without revealing it, e.g. `local:3f2a9c0d1e4b5a6f`. Stored beside every wrapped key. */
  readonly id: string;
  wrap(key: Buffer, context: string): Promise<Buffer>;
  /** Throws WRONG_MASTER_KEY when the wrapped key was not made by this provider's key (or was altered). */
  unwrap(wrapped: Buffer, context: string): Promise<Buffer>;
}

export const masterKeyBytes = 32;
const ivBytes = 12;
const tagBytes = 16;

/** The key file under OUTREACH_HOME. */
export function masterKeyPath(home: string): string {
  return join(home, 'master.key');
}

/** A fingerprint that names a master key in `data_keys.kek_id` and `keys status` (HMAC, reveals nothing of the key). */
export function masterKeyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('secure-outreach master key fingerprint').digest('hex').slice(0, 16);
}

/** The local provider: AES-256-GCM under a 32-byte master key held in memory. */
export function localKmsProvider(masterKey: Buffer): KmsProvider {
  if (masterKey.length !== masterKeyBytes) throw fail('INVALID_CONFIG', 'the master key must be 32 bytes');
  const key = Buffer.from(masterKey);
  return {
    id: `local:${masterKeyFingerprint(key)}`,
    async wrap(plain, context) {
      const iv = randomBytes(ivBytes);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([c.update(plain), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), ct]);
    },
    async unwrap(wrapped, context) {
      if (wrapped.length < ivBytes + tagBytes + 1) throw fail('WRONG_MASTER_KEY', 'a wrapped data key is malformed');
      try {
        const d = createDecipheriv('aes-256-gcm', key, wrapped.subarray(0, ivBytes));
        d.setAAD(Buffer.from(context, 'utf8'));
        d.setAuthTag(wrapped.subarray(ivBytes, ivBytes + tagBytes));
        return Buffer.concat([d.update(wrapped.subarray(ivBytes + tagBytes)), d.final()]);
      } catch {
        throw fail('WRONG_MASTER_KEY');
      }
    },
  };
}

/** Parses a base64 master key (OUTREACH_MASTER_KEY or the key file's content). */
export function parseMasterKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.length !== masterKeyBytes) {
    throw fail('INVALID_CONFIG', `${where} must hold a base64-encoded 32-byte key`);
  }
  return key;
}

/** A fresh random master key. */
export function generateMasterKey(): Buffer {
  return randomBytes(masterKeyBytes);
}

/** Where the master key came from, for `keys status` and `keys rewrap-master`. */
export type MasterKeySource = 'env' | 'file';

export interface ResolvedMasterKey {
  key: Buffer;
  source: MasterKeySource;
  /** The key file, when the key came from one (or was just created). */
  file?: string;
  created: boolean;
}

/**
 * Finds the master key: OUTREACH_MASTER_KEY, else the key file. When neither exists and `createIfMissing` is set (the
 * store holds no data keys yet: first run) a new key file is created with mode 0600; otherwise WRONG_MASTER_KEY.
 */
export function resolveMasterKey(
  options: { home: string; masterKey?: string | undefined },
  createIfMissing: boolean,
): ResolvedMasterKey {
  if (options.masterKey) return { key: parseMasterKey(options.masterKey, 'OUTREACH_MASTER_KEY'), source: 'env', created: false };
  const file = masterKeyPath(options.home);
  if (existsSync(file)) return { key: readMasterKeyFile(file), source: 'file', file, created: false };
  if (!createIfMissing) {
    throw fail('WRONG_MASTER_KEY', 'no master key: the key file is missing and OUTREACH_MASTER_KEY is not set, but the store holds data keys');
  }
  const key = generateMasterKey();
  try {
    mkdirSync(options.home, { recursive: true, mode: 0o700 });
    writeKeyFile(file, key, 'wx');
    return { key, source: 'file', file, created: true };
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: readMasterKeyFile(file), source: 'file', file, created: false };
    throw fail('INVALID_CONFIG', `cannot create the master key file under OUTREACH_HOME: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Reads a key file, refusing one that group or others can read (like ssh does). */
export function readMasterKeyFile(file: string): Buffer {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) throw fail('INVALID_CONFIG', `the master key file must be readable by its owner only (mode 0600), it is ${mode.toString(8)}`);
  return parseMasterKey(readFileSync(file, 'utf8'), 'the master key file');
}

/** Writes a key file with mode 0600 and fsyncs it. `flag` 'wx' refuses to overwrite. */
export function writeKeyFile(file: string, key: Buffer, flag: 'wx' | 'w' = 'wx'): void {
  const fd = openSync(file, flag, 0o600);
  try {
    writeSync(fd, key.toString('base64') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
