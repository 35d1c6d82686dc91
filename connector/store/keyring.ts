// The keyring: versioned data keys wrapped by the master key, AES-256-GCM field sealing and HMAC blind indexes.
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { fail } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher, SealContext } from './cipher.js';
import { asBuffer, loadQueries, type Db, type Queryable } from './db.js';
import { localKmsProvider, readMasterKeyFile, resolveMasterKey, type KmsProvider, type ResolvedMasterKey } from './master-key.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'dataKeys',
  'insertDataKey',
  'retireDataKey',
  'rewrapDataKey',
  'insertResealJob',
  'sealedColumns',
] as const);

/** Sealed value layout: key version (uint32 BE) · IV (12) · tag (16) · ciphertext. */
export const versionBytes = 4;
const ivBytes = 12;
const tagBytes = 16;
const headerBytes = versionBytes + ivBytes + tagBytes;
const dataKeyBytes = 32;
const blindIndexVersion = 0;

interface SealKey {
  version: number;
  key: KeyObject;
  header: Buffer;
}

interface DataKeyRow {
  purpose: 'seal' | 'blind-index';
  version: number;
  wrapped: Uint8Array | null;
  kek_id: string;
  created_at: Date | string;
  retired_at: Date | string | null;
}

/**
 * A column holding sealed values, registered in `sealed_columns` by the module that owns it. The AAD row id of a value
 * is `idColumn` as text, or, with rowIdFormat 'hex', the lower-case hex of a bytea key.
 */
export interface SealedColumn {
  table: string;
  column: string;
  idColumn: string;
  rowIdFormat: 'text' | 'hex';
}

/** What `keys status` lists per data key version. */
export interface DataKeyInfo {
  purpose: 'seal' | 'blind-index';
  version: number;
  kekId: string;
  createdAt: string;
  retiredAt?: string;
  current: boolean;
}

/** The 4-byte prefix of every value sealed under `version` (SQL compares it to find rows under old versions). */
export function versionPrefix(version: number): Buffer {
  const b = Buffer.alloc(versionBytes);
  b.writeUInt32BE(version);
  return b;
}

/** The key version a sealed value names. */
export function sealedVersion(sealed: Uint8Array): number {
  if (sealed.length < headerBytes) throw fail('DECRYPT_FAILED', 'a sealed value is truncated');
  return asBuffer(sealed).readUInt32BE(0);
}

function wrapContext(purpose: string, version: number): string {
  return `secure-outreach data key|${purpose}|${version}`;
}

function aad(at: SealContext): Buffer {
  return Buffer.from(`${at.table}|${at.column}|${at.rowId}`, 'utf8');
}

/** Blind-index normalisation per kind: emails compare case-insensitively, every kind ignores surrounding space. */
export function normaliseForIndex(kind: string, value: string): string {
  const trimmed = value.normalize('NFC').trim();
  return kind === 'email' ? trimmed.toLowerCase() : trimmed;
}

export class Keyring implements FieldCipher {
  private sealKeys = new Map<number, SealKey>();
  private current!: SealKey;
  private blindKey!: Buffer;
  private infos: DataKeyInfo[] = [];
  private ivPool = Buffer.alloc(ivBytes * 4096);
  private ivOffset = this.ivPool.length;
  private readonly rotationListeners = new Set<(version: number) => void>();

  private constructor(
    private readonly db: Db,
    private kms: KmsProvider,
    private readonly log: Log,
  ) {}

  /** True when the store already holds data keys (so a missing master key is an error, not a first run). */
  static async storeHasKeys(db: Queryable): Promise<boolean> {
    const [table] = await db.query<{ t: string | null }>("SELECT to_regclass('data_keys')::text AS t");
    return Boolean(table?.t) && (await db.query(q.dataKeys)).length > 0;
  }

  /**
   * Opens the keyring: on first run creates seal key v1 and the blind-index key; otherwise unwraps every live data key.
   * A master key that does not unwrap them throws WRONG_MASTER_KEY before anything is written.
   */
  static async open(db: Db, kms: KmsProvider, options: { log?: Log } = {}): Promise<Keyring> {
    const keyring = new Keyring(db, kms, options.log ?? silentLog);
    let rows = await db.query<DataKeyRow>(q.dataKeys);
    if (rows.length === 0) {
      const seal = randomBytes(dataKeyBytes);
      const blind = randomBytes(dataKeyBytes);
      const wrappedSeal = await kms.wrap(seal, wrapContext('seal', 1));
      const wrappedBlind = await kms.wrap(blind, wrapContext('blind-index', blindIndexVersion));
      await db.transaction(async (tx) => {
        await tx.query(q.insertDataKey, ['seal', 1, wrappedSeal, kms.id]);
        await tx.query(q.insertDataKey, ['blind-index', blindIndexVersion, wrappedBlind, kms.id]);
      });
      keyring.log.info({ kekId: kms.id }, 'keyring created: seal key v1 and blind-index key');
      rows = await db.query<DataKeyRow>(q.dataKeys);
    }
    await keyring.load(rows);
    return keyring;
  }

  /** The KMS provider (master key) currently wrapping the data keys. */
  get kekId(): string {
    return this.kms.id;
  }

  get currentVersion(): number {
    return this.current.version;
  }

  /** Data key versions, newest first. */
  keys(): DataKeyInfo[] {
    return this.infos.map((i) => ({ ...i }));
  }

  private async load(rows: DataKeyRow[]): Promise<void> {
    const sealKeys = new Map<number, SealKey>();
    let blind: Buffer | undefined;
    const infos: DataKeyInfo[] = [];
    for (const row of rows) {
      const info: DataKeyInfo = {
        purpose: row.purpose,
        version: row.version,
        kekId: row.kek_id,
        createdAt: new Date(row.created_at).toISOString(),
        current: false,
        ...(row.retired_at ? { retiredAt: new Date(row.retired_at).toISOString() } : {}),
      };
      infos.push(info);
      if (!row.wrapped) continue;
      // Keys already cached were unwrapped before; unwrap only what is new.
      const cached = row.purpose === 'seal' ? this.sealKeys.get(row.version) : undefined;
      if (cached) {
        sealKeys.set(row.version, cached);
        continue;
      }
      if (row.purpose === 'blind-index' && this.blindKey) {
        blind = this.blindKey;
        continue;
      }
      const plain = await this.kms.unwrap(asBuffer(row.wrapped), wrapContext(row.purpose, row.version));
      if (plain.length !== dataKeyBytes) throw fail('WRONG_MASTER_KEY', 'an unwrapped data key has the wrong length');
      if (row.purpose === 'blind-index') blind = plain;
      else sealKeys.set(row.version, { version: row.version, key: createSecretKey(plain), header: versionPrefix(row.version) });
    }
    if (!blind) throw fail('KEY_NOT_FOUND', 'the blind-index key is missing from data_keys');
    const newest = Math.max(...sealKeys.keys());
    const current = sealKeys.get(newest);
    if (!current) throw fail('KEY_NOT_FOUND', 'no live seal key in data_keys');
    for (const info of infos) info.current = info.purpose === 'seal' && info.version === newest;
    infos.sort((a, b) => (a.purpose === b.purpose ? b.version - a.version : a.purpose === 'seal' ? -1 : 1));
    this.sealKeys = sealKeys;
    this.blindKey = blind;
    this.current = current;
    this.infos = infos;
  }

  /** Re-reads data_keys: picks up a rotation or retirement made by another process. */
  async refresh(): Promise<void> {
    const before = this.current.version;
    await this.load(await this.db.query<DataKeyRow>(q.dataKeys));
    if (this.current.version !== before) this.emitRotation();
  }

  private nextIv(): Buffer {
    if (this.ivOffset + ivBytes > this.ivPool.length) {
      randomFillSync(this.ivPool);
      this.ivOffset = 0;
    }
    const iv = this.ivPool.subarray(this.ivOffset, this.ivOffset + ivBytes);
    this.ivOffset += ivBytes;
    return iv;
  }

  seal(plaintext: string | Uint8Array, at: SealContext): Buffer {
    const { key, header } = this.current;
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const out = Buffer.allocUnsafe(headerBytes + data.length);
    header.copy(out, 0);
    const iv = this.nextIv();
    iv.copy(out, versionBytes);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad(at));
    const body = c.update(data);
    c.final();
    c.getAuthTag().copy(out, versionBytes + ivBytes);
    body.copy(out, headerBytes);
    return out;
  }

  open(sealed: Uint8Array, at: SealContext): Buffer {
    const buf = asBuffer(sealed);
    const version = sealedVersion(buf);
    const sealKey = this.sealKeys.get(version);
    if (!sealKey) throw fail('KEY_NOT_FOUND', `data key version ${version} is not in the keyring (retired, or rotated by another process: refresh)`);
    try {
      const d = createDecipheriv('aes-256-gcm', sealKey.key, buf.subarray(versionBytes, versionBytes + ivBytes));
      d.setAAD(aad(at));
      d.setAuthTag(buf.subarray(versionBytes + ivBytes, headerBytes));
      const body = d.update(buf.subarray(headerBytes));
      d.final();
      return body;
    } catch {
      throw fail('DECRYPT_FAILED', `a sealed value in ${at.table}.${at.column} failed authentication`);
    }
  }

  openText(sealed: Uint8Array, at: SealContext): string {
    return this.open(sealed, at).toString('utf8');
  }

  blindIndex(kind: string, value: string): Buffer {
    return createHmac('sha256', this.blindKey).update(kind).update('\0').update(normaliseForIndex(kind, value)).digest();
  }

  /** Is `sealed` under an older version than the current one? */
  isStale(sealed: Uint8Array): boolean {
    return sealedVersion(sealed) !== this.current.version;
  }

  /**
   * Rotation: a new seal key version becomes current and a reseal job is queued that moves every registered sealed
   * column onto it. Returns the new version and the job id.
   */
  async rotate(): Promise<{ version: number; jobId: number }> {
    await this.refresh();
    const version = Math.max(0, ...this.infos.filter((i) => i.purpose === 'seal').map((i) => i.version)) + 1;
    const plain = randomBytes(dataKeyBytes);
    const wrapped = await this.kms.wrap(plain, wrapContext('seal', version));
    const jobId = await this.db.transaction(async (tx) => {
      await tx.query(q.insertDataKey, ['seal', version, wrapped, this.kms.id]);
      const [job] = await tx.query<{ id: number | string }>(q.insertResealJob, [version]);
      return Number(job!.id);
    });
    await this.refresh();
    this.log.info({ version, jobId }, 'data key rotated; reseal job queued');
    return { version, jobId };
  }

  /** Listeners run when the current version changes (the background reseal worker starts on it). */
  onRotation(listener: (version: number) => void): () => void {
    this.rotationListeners.add(listener);
    return () => this.rotationListeners.delete(listener);
  }

  private emitRotation(): void {
    for (const l of this.rotationListeners) l(this.current.version);
  }

  /** Sealed columns registered by every module's migrations. */
  async sealedColumns(): Promise<SealedColumn[]> {
    const rows = await this.db.query<{ table_name: string; column_name: string; id_column: string; row_id_format: 'text' | 'hex' }>(q.sealedColumns);
    return rows.map((r) => ({ table: r.table_name, column: r.column_name, idColumn: r.id_column, rowIdFormat: r.row_id_format }));
  }

  /** Rows per key version in every sealed column. */
  async usage(): Promise<Array<{ table: string; column: string; version: number; rows: number }>> {
    const out: Array<{ table: string; column: string; version: number; rows: number }> = [];
    for (const c of await this.sealedColumns()) {
      const exists = await this.db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [c.table]);
      if (!exists[0]?.t) continue;
      const rows = await this.db.query<{ v: Uint8Array; n: number | string }>(
        `SELECT substring(${c.column} from 1 for ${versionBytes}) AS v, count(*) AS n FROM ${c.table} WHERE ${c.column} IS NOT NULL GROUP BY 1`,
      );
      for (const r of rows) {
        const v = asBuffer(r.v);
        out.push({ table: c.table, column: c.column, version: v.length === versionBytes ? v.readUInt32BE(0) : -1, rows: Number(r.n) });
      }
    }
    return out;
  }

  /**
   * Retires an old seal key: refused while it is current or any registered column still holds a value under it. The
   * wrapped key is deleted (crypto-shredded), so values still sealed under it could never be opened again.
   */
  async retire(version: number): Promise<void> {
    await this.refresh();
    const info = this.infos.find((i) => i.purpose === 'seal' && i.version === version);
    if (!info) throw fail('NOT_FOUND', `seal key version ${version} does not exist`);
    if (info.retiredAt) return;
    if (info.current) throw fail('CONFLICT', `seal key version ${version} is current; rotate first`);
    const inUse = (await this.usage()).filter((u) => u.version === version).reduce((n, u) => n + u.rows, 0);
    if (inUse > 0) throw fail('CONFLICT', `${inUse} sealed values still use version ${version}; run \`outreach keys reseal\` first`);
    await this.db.query(q.retireDataKey, [version]);
    await this.refresh();
    this.log.info({ version }, 'seal key version retired');
  }

  /**
   * Re-wraps every live data key under a new master key (KMS provider) in one transaction. The data keys and every
   * sealed value stay as they are. Rows wrapped by another master key make it fail with WRONG_MASTER_KEY.
   */
  async rewrapMaster(next: KmsProvider): Promise<{ rewrapped: number }> {
    const rows = await this.db.query<DataKeyRow>(q.dataKeys);
    const updates: Array<[string, number, Buffer]> = [];
    for (const row of rows) {
      if (!row.wrapped) continue;
      const plain = await this.kms.unwrap(asBuffer(row.wrapped), wrapContext(row.purpose, row.version));
      updates.push([row.purpose, row.version, await next.wrap(plain, wrapContext(row.purpose, row.version))]);
    }
    await this.db.transaction(async (tx) => {
      for (const [purpose, version, wrapped] of updates) {
        const done = await tx.query(q.rewrapDataKey, [purpose, version, wrapped, next.id, this.kms.id]);
        if (done.length !== 1) throw fail('CONFLICT', 'the data keys changed during the re-wrap; nothing was changed');
      }
    });
    this.kms = next;
    await this.refresh();
    this.log.info({ kekId: next.id, rewrapped: updates.length }, 'data keys re-wrapped under a new master key');
    return { rewrapped: updates.length };
  }
}

/** What `openKeyring` needs from the configuration. */
export interface KeyringConfig {
  home: string;
  masterKey?: string | undefined;
}

/**
 * Opens the keyring with the local master key: OUTREACH_MASTER_KEY, else the key file, created (0600) on first run
 * only. A key-file re-wrap interrupted after its commit is finished here (the staged `master.key.next` is adopted).
 * Pass `kms` to use another provider (cloud KMS, Vault) instead.
 */
export async function openKeyring(
  db: Db,
  config: KeyringConfig,
  options: { log?: Log; kms?: KmsProvider } = {},
): Promise<{ keyring: Keyring; masterKey: ResolvedMasterKey | undefined }> {
  if (options.kms) return { keyring: await Keyring.open(db, options.kms, options), masterKey: undefined };
  const hasKeys = await Keyring.storeHasKeys(db);
  const resolved = resolveMasterKey(config, !hasKeys);
  try {
    return { keyring: await Keyring.open(db, localKmsProvider(resolved.key), options), masterKey: resolved };
  } catch (err) {
    const staged = resolved.file ? `${resolved.file}.next` : undefined;
    if ((err as { code?: string }).code !== 'WRONG_MASTER_KEY' || !staged || !existsSync(staged)) throw err;
    const key = readMasterKeyFile(staged);
    const keyring = await Keyring.open(db, localKmsProvider(key), options);
    renameSync(staged, resolved.file!);
    options.log?.warn({}, 'finished an interrupted master key re-wrap: adopted the staged key file');
    return { keyring, masterKey: { ...resolved, key } };
  }
}
