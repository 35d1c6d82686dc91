// Password hashing: scrypt (node:crypto) with a per-user salt, parameters stored with the hash, constant-time compare.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { fail } from '../errors.js';

export interface ScryptCost {
  /** CPU/memory cost (power of two). */
  N: number;
  r: number;
  p: number;
}

/** About 50 ms and 32 MiB per hash on a server core: slow for a guesser, fine for a login. */
export const defaultCost: ScryptCost = { N: 2 ** 15, r: 8, p: 1 };
const keyLength = 32;

export interface PasswordHash {
  /** `scrypt$N$r$p`: kept so the cost can be raised later without breaking stored hashes. */
  params: string;
  salt: Buffer;
  hash: Buffer;
}

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export function checkPasswordStrength(password: string): void {
  if (password.length < 12) throw fail('BAD_REQUEST', 'a password needs at least 12 characters', { field: 'password' });
  if (password.length > 1024) throw fail('BAD_REQUEST', 'a password may have at most 1024 characters', { field: 'password' });
}

export async function hashPassword(password: string, cost: ScryptCost = defaultCost): Promise<PasswordHash> {
  const salt = randomBytes(16);
  return { params: `scrypt$${cost.N}$${cost.r}$${cost.p}`, salt, hash: await derive(password, salt, cost) };
}

export function parseParams(params: string): ScryptCost {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)$/.exec(params);
  if (!m) throw fail('INTERNAL', 'stored password parameters are not scrypt');
  return { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
}

/** Recomputes and compares in constant time. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, parseParams(stored.params));
  return candidate.length === stored.hash.length && timingSafeEqual(candidate, stored.hash);
}

/** A one-time password: 24 characters of base64url (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
