// The REST calls the sync makes, over a @salesforce/core Connection: SOQL paging, describe, sObject collections, single records.
import type { Connection } from '@salesforce/core';
import { salesforceCode } from './salesforce-error.js';

/** One record's outcome in an sObject collection call. */
export interface SaveResult {
  id?: string | null;
  success: boolean;
  errors: Array<{ statusCode?: string; message?: string; fields?: string[] }>;
}

interface QueryPage<R> {
  totalSize: number;
  done: boolean;
  nextRecordsUrl?: string;
  records: R[];
}

/** sObject collections take at most 200 records a call. */
export const collectionLimit = 200;

const base = (conn: Connection) => `/services/data/v${conn.getApiVersion()}`;

const json = (method: 'POST' | 'PATCH', url: string, body: unknown) => ({
  method,
  url,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

/** A SOQL literal for a datetime: whole seconds in UTC (callers compare with >= so the truncation only re-reads). */
export function soqlDateTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A SOQL string literal of an id (ids are alphanumeric; anything else is refused before it reaches a query). */
export function soqlId(id: string): string {
  if (!/^[A-Za-z0-9]{15,18}$/.test(id)) throw new Error('not a Salesforce id');
  return `'${id}'`;
}

/** Salesforce datetimes look like 2026-03-01T12:00:00.000+0000. */
export function parseSalesforceDate(value: string): Date {
  return new Date(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
}

/** Runs a SOQL query and yields its pages, following nextRecordsUrl. */
export async function* queryPages<R>(conn: Connection, soql: string): AsyncGenerator<R[]> {
  let page = await conn.request<QueryPage<R>>(`${base(conn)}/query?q=${encodeURIComponent(soql)}`);
  for (;;) {
    yield page.records;
    if (page.done || !page.nextRecordsUrl) return;
    page = await conn.request<QueryPage<R>>(page.nextRecordsUrl);
  }
}

export interface SObjectDescribe {
  name: string;
  createable: boolean;
  updateable: boolean;
  fields: Array<{ name: string; type: string; updateable?: boolean; createable?: boolean }>;
}

/** Describes an sObject; undefined when the org does not have it (NOT_FOUND / INVALID_TYPE). */
export async function describe(conn: Connection, sobject: string): Promise<SObjectDescribe | undefined> {
  try {
    return await conn.request<SObjectDescribe>(`${base(conn)}/sobjects/${sobject}/describe`);
  } catch (err) {
    const code = salesforceCode(err);
    if (code === 'NOT_FOUND' || code === 'INVALID_TYPE' || code === 'ERROR_HTTP_404') return undefined;
    throw err;
  }
}

/** Creates (POST) or updates (PATCH, records carry Id) records through sObject collections, 200 at a time, allOrNone false. */
export async function saveCollection(
  conn: Connection,
  method: 'POST' | 'PATCH',
  type: string,
  records: ReadonlyArray<Record<string, unknown>>,
): Promise<SaveResult[]> {
  const out: SaveResult[] = [];
  for (let i = 0; i < records.length; i += collectionLimit) {
    const chunk = records.slice(i, i + collectionLimit).map((r) => ({ attributes: { type }, ...r }));
    out.push(...(await conn.request<SaveResult[]>(json(method, `${base(conn)}/composite/sobjects`, { allOrNone: false, records: chunk }))));
  }
  return out;
}

/** Creates one record; returns its id. */
export async function createRecord(conn: Connection, type: string, record: Record<string, unknown>): Promise<string> {
  const result = await conn.request<{ id: string; success: boolean }>(json('POST', `${base(conn)}/sobjects/${type}`, record));
  return result.id;
}

/** Updates one record (204 No Content). */
export async function updateRecord(conn: Connection, type: string, id: string, record: Record<string, unknown>): Promise<void> {
  await conn.request(json('PATCH', `${base(conn)}/sobjects/${type}/${id}`, record));
}

/** The status code of a failed SaveResult (`DUPLICATE_VALUE`). */
export function saveErrorCode(result: SaveResult): string {
  const code = result.errors[0]?.statusCode;
  return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? code : 'UNKNOWN_ERROR';
}

export function apiBase(conn: Connection): string {
  return base(conn);
}
