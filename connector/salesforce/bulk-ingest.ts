// Bulk API 2.0 ingest: create a job, PUT its CSV once, PATCH UploadComplete, poll its state, read successful and failed results.
import { setTimeout as delay } from 'node:timers/promises';
import type { Connection } from '@salesforce/core';
import { fail } from '../errors.js';
import { apiBase } from './org-api.js';

export interface BulkOptions {
  pollMs: number;
  timeoutMs: number;
  /** A job takes one upload of at most 100 MB of CSV: larger inputs are split into several jobs of this many rows. */
  rowsPerJob?: number;
}

export interface BulkRowResult {
  /** The row as uploaded (column -> value). */
  row: Record<string, string>;
  /** The new record id, on success. */
  id?: string;
  /** The status code of a failed row (`DUPLICATE_VALUE`). */
  error?: string;
}

export interface BulkReport {
  jobIds: string[];
  results: BulkRowResult[];
  /** Rows Salesforce did not process (a job that ended early). */
  unprocessed: number;
}

interface JobInfo {
  id: string;
  state: 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';
  numberRecordsProcessed?: number;
  numberRecordsFailed?: number;
}

const jsonHeaders = { 'content-type': 'application/json; charset=utf-8' };

/** Our values are ids and picklist labels; a value with a delimiter, quote or line break is quoted anyway. */
function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function toCsv(columns: readonly string[], rows: ReadonlyArray<Record<string, string>>): string {
  const lines = [columns.map(csvCell).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c] ?? '')).join(','));
  return lines.join('\n') + '\n';
}

/** Inserts rows of `object` with Bulk API 2.0 and waits for every job to finish. */
export async function bulkInsert(
  conn: Connection,
  object: string,
  columns: readonly string[],
  rows: ReadonlyArray<Record<string, string>>,
  options: BulkOptions,
): Promise<BulkReport> {
  const perJob = options.rowsPerJob ?? 500_000;
  const report: BulkReport = { jobIds: [], results: [], unprocessed: 0 };
  for (let i = 0; i < rows.length; i += perJob) {
    const part = rows.slice(i, i + perJob);
    const { jobId, results, unprocessed } = await runJob(conn, object, columns, part, options);
    report.jobIds.push(jobId);
    report.results.push(...results);
    report.unprocessed += unprocessed;
  }
  return report;
}

async function runJob(
  conn: Connection,
  object: string,
  columns: readonly string[],
  rows: ReadonlyArray<Record<string, string>>,
  options: BulkOptions,
): Promise<{ jobId: string; results: BulkRowResult[]; unprocessed: number }> {
  const jobs = `${apiBase(conn)}/jobs/ingest`;
  const job = await conn.request<JobInfo>({
    method: 'POST',
    url: jobs,
    body: JSON.stringify({ object, operation: 'insert', contentType: 'CSV', columnDelimiter: 'COMMA', lineEnding: 'LF' }),
    headers: jsonHeaders,
  });
  await conn.request({ method: 'PUT', url: `${jobs}/${job.id}/batches`, body: toCsv(columns, rows), headers: { 'content-type': 'text/csv' } });
  await conn.request({ method: 'PATCH', url: `${jobs}/${job.id}`, body: JSON.stringify({ state: 'UploadComplete' }), headers: jsonHeaders });

  const deadline = Date.now() + options.timeoutMs;
  let info: JobInfo;
  for (;;) {
    info = await conn.request<JobInfo>(`${jobs}/${job.id}`);
    if (info.state === 'JobComplete' || info.state === 'Failed' || info.state === 'Aborted') break;
    if (Date.now() >= deadline) {
      await conn.request({ method: 'PATCH', url: `${jobs}/${job.id}`, body: JSON.stringify({ state: 'Aborted' }), headers: jsonHeaders }).catch(() => undefined);
      throw fail('SALESFORCE_ERROR', 'Salesforce did not finish the bulk job in time: BULK_JOB_TIMEOUT', { salesforceCode: 'BULK_JOB_TIMEOUT', operation: 'bulk insert' });
    }
    // Polling the org is the protocol: Bulk API 2.0 has no completion callback.
    await delay(options.pollMs);
  }
  if (info.state === 'Aborted') {
    throw fail('SALESFORCE_ERROR', 'Salesforce aborted the bulk job: BULK_JOB_ABORTED', { salesforceCode: 'BULK_JOB_ABORTED', operation: 'bulk insert' });
  }
  const csv = { responseType: 'text/csv' };
  const ok = await conn.request<Array<Record<string, string>>>(`${jobs}/${job.id}/successfulResults/`, csv);
  const failed = await conn.request<Array<Record<string, string>>>(`${jobs}/${job.id}/failedResults/`, csv);
  const results: BulkRowResult[] = [];
  const rowOf = (r: Record<string, string>) => Object.fromEntries(columns.map((c) => [c, r[c] ?? '']));
  for (const r of asRows(ok)) results.push({ row: rowOf(r), id: r.sf__Id! });
  for (const r of asRows(failed)) results.push({ row: rowOf(r), error: errorCodeOf(r.sf__Error) });
  // A failed job (not a failed row) may leave rows unprocessed: they count, and the caller retries them next push.
  const unprocessed = Math.max(0, rows.length - results.length);
  if (info.state === 'Failed' && results.length === 0) {
    throw fail('SALESFORCE_ERROR', 'Salesforce failed the bulk job: BULK_JOB_FAILED', { salesforceCode: 'BULK_JOB_FAILED', operation: 'bulk insert' });
  }
  return { jobId: job.id, results, unprocessed };
}

/** jsforce parses text/csv into rows; an empty result set may come back as an empty string. */
function asRows(value: unknown): Array<Record<string, string>> {
  return Array.isArray(value) ? (value as Array<Record<string, string>>) : [];
}

/** sf__Error is `STATUS_CODE:message:fields`; only the code is kept. */
function errorCodeOf(value: string | undefined): string {
  const code = (value ?? '').split(':')[0] ?? '';
  return /^[A-Z_]{1,64}$/.test(code) ? code : 'UNKNOWN_ERROR';
}
