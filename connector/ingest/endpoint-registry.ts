// The FHIR endpoint registry: endpoints validated by fhir/endpoint.ts, stored with their private key sealed by the keyring.
import { parseEndpointConfig, type EndpointConfig, type EndpointInput } from '../../fhir/endpoint.js';
import type { FieldCipher, SealContext } from '../store/cipher.js';
import { asBuffer, loadQueries, type Queryable } from '../store/db.js';
import { fail } from '../errors.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertEndpoint', 'listEndpoints', 'endpointByName', 'deleteEndpoint'] as const);

/** What `add` takes: an endpoint as entered; the key may be a PEM or any JWK object (validated on the way in). */
export type EndpointDraft = Omit<EndpointInput, 'privateKey'> & { privateKey?: string | Record<string, unknown> };

const keyAt = (name: string): SealContext => ({ table: 'fhir_endpoints', column: 'private_key', rowId: name });

/** An endpoint as listed: everything but the key. */
export interface EndpointSummary {
  name: string;
  baseUrl: string;
  auth: 'smart-backend' | 'none';
  clientId?: string;
  alg?: 'RS384' | 'ES384';
  kid?: string;
  scopes: string[];
  tokenUrl?: string;
  hasKey: boolean;
  createdAt: string;
  updatedAt: string;
}

interface EndpointRow {
  name: string;
  base_url: string;
  auth: 'smart-backend' | 'none';
  client_id: string | null;
  alg: 'RS384' | 'ES384' | null;
  kid: string | null;
  scopes: string[] | string;
  token_url: string | null;
  has_key?: boolean;
  private_key?: Uint8Array | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (d: Date | string) => (d instanceof Date ? d.toISOString() : new Date(d).toISOString());

function summary(r: EndpointRow): EndpointSummary {
  return {
    name: r.name,
    baseUrl: r.base_url,
    auth: r.auth,
    ...(r.client_id ? { clientId: r.client_id } : {}),
    ...(r.alg ? { alg: r.alg } : {}),
    ...(r.kid ? { kid: r.kid } : {}),
    scopes: typeof r.scopes === 'string' ? (JSON.parse(r.scopes) as string[]) : r.scopes,
    ...(r.token_url ? { tokenUrl: r.token_url } : {}),
    hasKey: r.has_key ?? Boolean(r.private_key),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

export interface EndpointRegistryOptions {
  /** config.openFhirEndpoints: allow endpoints without auth (test servers only). */
  allowOpen?: boolean;
}

export class EndpointRegistry {
  constructor(
    private readonly db: Queryable,
    private readonly cipher: FieldCipher,
    private readonly options: EndpointRegistryOptions = {},
  ) {}

  /** Validates (the key must sign with RS384 or ES384) and stores a new endpoint; CONFLICT when the name is taken. */
  async add(input: EndpointDraft): Promise<EndpointSummary> {
    const config = parseEndpointConfig(input, { allowOpen: this.options.allowOpen });
    const key = config.privateKey === undefined ? null : typeof config.privateKey === 'string' ? config.privateKey : JSON.stringify(config.privateKey);
    const sealed = key === null ? null : this.cipher.seal(key, keyAt(config.name));
    const rows = await this.db.query<EndpointRow>(q.insertEndpoint, [
      config.name,
      config.baseUrl,
      config.auth,
      config.clientId ?? null,
      config.auth === 'none' ? null : (config.alg ?? null),
      config.kid ?? null,
      JSON.stringify(config.scopes),
      config.tokenUrl ?? null,
      sealed,
    ]);
    if (rows.length === 0) throw fail('CONFLICT', `FHIR endpoint ${config.name} already exists`);
    return (await this.list()).find((e) => e.name === config.name)!;
  }

  async list(): Promise<EndpointSummary[]> {
    return (await this.db.query<EndpointRow>(q.listEndpoints)).map(summary);
  }

  /** The full configuration with the private key opened, for the FHIR client. NOT_FOUND when unknown. */
  async get(name: string): Promise<EndpointConfig> {
    const [row] = await this.db.query<EndpointRow>(q.endpointByName, [name]);
    if (!row) throw fail('NOT_FOUND', `FHIR endpoint ${name} not found`);
    let privateKey: string | Record<string, unknown> | undefined;
    if (row.private_key) {
      const text = this.cipher.openText(asBuffer(row.private_key), keyAt(row.name));
      privateKey = text.trimStart().startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text;
    }
    const s = summary(row);
    return parseEndpointConfig(
      {
        name: s.name,
        baseUrl: s.baseUrl,
        auth: s.auth,
        scopes: s.scopes,
        ...(s.clientId ? { clientId: s.clientId } : {}),
        ...(s.alg ? { alg: s.alg } : {}),
        ...(s.kid ? { kid: s.kid } : {}),
        ...(s.tokenUrl ? { tokenUrl: s.tokenUrl } : {}),
        ...(privateKey ? { privateKey } : {}),
      },
      { allowOpen: this.options.allowOpen },
    );
  }

  /** Removes an endpoint; NOT_FOUND when unknown. Facts already synced stay. */
  async remove(name: string): Promise<void> {
    const rows = await this.db.query(q.deleteEndpoint, [name]);
    if (rows.length === 0) throw fail('NOT_FOUND', `FHIR endpoint ${name} not found`);
  }
}
