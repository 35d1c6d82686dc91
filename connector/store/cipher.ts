// The field-encryption contract every module seals PHI through (implemented by the keyring).

/** Where a sealed value lives: it is the AES-GCM associated data, so a ciphertext opens only in its own cell. */
export interface SealContext {
  table: string;
  column: string;
  /** The row's primary key (as text). */
  rowId: string;
}

export interface FieldCipher {
  /** AES-256-GCM under the current data key; the output names the key version, carries the IV and the tag. */
  seal(plaintext: string | Uint8Array, at: SealContext): Buffer;
  /** Opens a sealed value; throws DECRYPT_FAILED when it was tampered with or moved to another cell. */
  open(sealed: Uint8Array, at: SealContext): Buffer;
  /** Opens a sealed UTF-8 string. */
  openText(sealed: Uint8Array, at: SealContext): string;
  /** Keyed HMAC-SHA256 blind index of a normalised value, domain-separated by `kind` ('email', 'mrn', 'crm', ...). */
  blindIndex(kind: string, value: string): Buffer;
}
