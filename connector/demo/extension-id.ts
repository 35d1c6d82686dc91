// The id Chrome gives an unpacked extension: derived from its folder's absolute path, so the demo can allow it in CORS before the browser loads it.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';

/** Chrome's unpacked-extension id: SHA-256 of the folder's real path, first 32 hex digits mapped 0-f → a-p. */
export function unpackedExtensionId(dir: string): string {
  const hex = createHash('sha256').update(realpathSync(resolve(dir))).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}
