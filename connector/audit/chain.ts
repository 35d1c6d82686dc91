// The audit hash chain: the canonical form of a row, its SHA-256 link to the previous row, and the keyed seal over it.
import { createHash } from 'node:crypto';
import type { FieldCipher } from '../store/cipher.js';

export const genesisHash = Buffer.alloc(32);

/** The fields a row's hash covers, in a fixed order. */
export interface ChainedFields {
  seq: string;
  at: Date;
  actor: string;
  role: string;
  action: string;
  purpose: string | null;
  patientBlind: string | null;
  entity: string | null;
  outcome: string;
}

/** A JSON array in a fixed field order: the same bytes for the same row on every platform. */
export function canonicalRow(row: ChainedFields): string {
  return JSON.stringify([
    row.seq,
    row.at.toISOString(),
    row.actor,
    row.role,
    row.action,
    row.purpose,
    row.patientBlind,
    row.entity,
    row.outcome,
  ]);
}

/** hash = SHA-256(prev_hash || canonical row). */
export function chainHash(prevHash: Uint8Array, row: ChainedFields): Buffer {
  return createHash('sha256').update(prevHash).update(canonicalRow(row), 'utf8').digest();
}

/** The keyed seal over a row hash: re-hashing a changed row without the key leaves this wrong. */
export function rowMac(cipher: FieldCipher, hash: Uint8Array): Buffer {
  return cipher.blindIndex('audit-chain-row', Buffer.from(hash).toString('hex'));
}

/** The keyed seal over the chain head (last seq and hash). */
export function headMac(cipher: FieldCipher, seq: string, hash: Uint8Array): Buffer {
  return cipher.blindIndex('audit-chain-head', `${seq}:${Buffer.from(hash).toString('hex')}`);
}
