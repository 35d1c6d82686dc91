// Bulk Data $export (system, Patient, Group): kick-off with respond-async, polling, NDJSON streaming, error files, job delete.
import { z } from 'zod';
import type { FhirClient } from './client.js';
import type { QuarantineItem } from './facts-sink.js';
import { ndjsonLines, type NdjsonLine } from './ndjson.js';
import { FhirError } from './outcome.js';
import { delay, networkError, retryAfterMs, silentFhirLog, type FhirLog } from './transport.js';

export type ExportLevel = { kind: 'system' } | { kind: 'patient' } | { kind: 'group'; groupId: string };

export interface BulkExportOptions {
  /** Default: all patients (`Patient/$export`). */
  level?: ExportLevel;
  /** `_type`: resource types to export. */
  types?: readonly string[];
  /** `_since`: only resources changed after this instant (the previous export's transactionTime). */
  since?: string;
  /** Give up polling after this long (default 6 h). */
  pollTimeoutMs?: number;
  /** Poll interval when the server sends no Retry-After (default 2 s). */
  defaultPollWaitMs?: number;
  /** The longest Retry-After honoured between polls; longer ones are cut to this (default 120 s). */
  maxPollWaitMs?: number;
  /** Abort a file download that receives nothing for this long (default 120 s). */
  fileIdleTimeoutMs?: number;
  onStatus?: (status: ExportStatus) => void;
  log?: FhirLog;
}

export interface ExportStatus {
  phase: 'accepted' | 'in-progress' | 'complete';
  polls: number;
  /** The server's X-Progress text (sanitised). */
  progress?: string;
}

const manifestFile = z.looseObject({ type: z.string().regex(/^[A-Z][A-Za-z]+$/), url: z.url(), count: z.number().int().nonnegative().optional() });
const ManifestSchema = z.looseObject({
  transactionTime: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/),
  request: z.string(),
  requiresAccessToken: z.boolean(),
  output: z.array(manifestFile),
  error: z.array(manifestFile).default([]),
});
export type ExportManifest = z.infer<typeof ManifestSchema>;
export type ExportFile = z.infer<typeof manifestFile>;

export interface ExportLine extends NdjsonLine {
  type: string;
  file: string;
}

/** One $export job at one endpoint, from kick-off to delete. */
export class BulkExportJob {
  private deleted = false;

  private constructor(
    private readonly client: FhirClient,
    readonly statusUrl: string,
    private readonly options: BulkExportOptions,
  ) {}

  /** Kicks off the export (`Prefer: respond-async`) and returns the job whose status URL the server gave. */
  static async kickOff(client: FhirClient, options: BulkExportOptions = {}): Promise<BulkExportJob> {
    const base = client.endpoint.baseUrl;
    const level = options.level ?? { kind: 'patient' };
    const path = level.kind === 'system' ? '$export' : level.kind === 'patient' ? 'Patient/$export' : `Group/${encodeURIComponent(level.groupId)}/$export`;
    const url = new URL(`${base}/${path}`);
    url.searchParams.set('_outputFormat', 'application/fhir+ndjson');
    if (options.types?.length) url.searchParams.set('_type', options.types.join(','));
    if (options.since) url.searchParams.set('_since', options.since);
    const response = await client.fetch(url.toString(), {
      what: 'export kick-off',
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    const location = response.headers.get('content-location');
    if (response.status !== 202 || !location) {
      const err = response.status === 202 ? undefined : await client.httpError(response, 'export kick-off');
      if (response.status === 202) await response.body?.cancel();
      throw new FhirError(
        'FHIR_EXPORT_FAILED',
        `endpoint "${client.endpoint.name}" did not accept the $export (HTTP ${response.status}${response.status === 202 ? ', no Content-Location' : ''}${err?.details.issue ? `, ${String(err.details.issue)}` : ''})`,
        { endpoint: client.endpoint.name, status: response.status },
      );
    }
    await response.body?.cancel();
    const statusUrl = new URL(location, `${base}/`).toString();
    options.onStatus?.({ phase: 'accepted', polls: 0 });
    (options.log ?? silentFhirLog).info({ endpoint: client.endpoint.name, level: level.kind }, 'fhir export accepted');
    return new BulkExportJob(client, statusUrl, options);
  }

  /** Polls the status URL until the manifest is ready, honouring Retry-After and reporting X-Progress. */
  async manifest(): Promise<ExportManifest> {
    const started = Date.now();
    const timeout = this.options.pollTimeoutMs ?? 6 * 3600_000;
    for (let polls = 1; ; polls++) {
      const response = await this.client.fetch(this.statusUrl, { what: 'export status', headers: { accept: 'application/json' } });
      if (response.status === 200) {
        const body = await response.json().catch(() => undefined);
        const parsed = ManifestSchema.safeParse(body);
        if (!parsed.success) {
          throw new FhirError('FHIR_EXPORT_FAILED', `endpoint "${this.client.endpoint.name}" returned an export manifest without a valid ${parsed.error.issues[0]!.path.join('.') || 'body'}`, {
            endpoint: this.client.endpoint.name,
          });
        }
        this.options.onStatus?.({ phase: 'complete', polls });
        return parsed.data;
      }
      if (response.status !== 202) {
        const err = await this.client.httpError(response, 'export status');
        throw new FhirError('FHIR_EXPORT_FAILED', `the $export at endpoint "${this.client.endpoint.name}" failed (HTTP ${response.status}${err.details.issue ? `, ${String(err.details.issue)}` : ''})`, {
          endpoint: this.client.endpoint.name,
          status: response.status,
        });
      }
      await response.body?.cancel();
      const progress = sanitiseProgress(response.headers.get('x-progress'));
      this.options.onStatus?.({ phase: 'in-progress', polls, ...(progress ? { progress } : {}) });
      const waitMs = Math.min(retryAfterMs(response.headers.get('retry-after')) ?? this.options.defaultPollWaitMs ?? 2000, this.options.maxPollWaitMs ?? 120_000);
      if (Date.now() + waitMs - started > timeout) {
        throw new FhirError('FHIR_TIMEOUT', `the $export at endpoint "${this.client.endpoint.name}" was not ready within ${Math.round(timeout / 1000)} s`, {
          endpoint: this.client.endpoint.name,
        });
      }
      await delay(waitMs);
    }
  }

  /**
   * The lines of one output file as they arrive. The token goes along only when the manifest requires it; a
   * download that stalls longer than the idle timeout fails.
   */
  async *lines(file: ExportFile, requiresAccessToken: boolean): AsyncGenerator<ExportLine> {
    const idleMs = this.options.fileIdleTimeoutMs ?? 120_000;
    const abort = new AbortController();
    let timer = setTimeout(() => abort.abort(new DOMException('idle', 'TimeoutError')), idleMs);
    const what = `download of an export ${file.type} file`;
    try {
      const response = await this.client.fetch(file.url, {
        what,
        authorize: requiresAccessToken,
        headers: { accept: 'application/fhir+ndjson' },
        signal: abort.signal,
      });
      if (!response.ok || !response.body) throw await this.client.httpError(response, what);
      const body = response.body;
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for await (const chunk of body) {
          clearTimeout(timer);
          timer = setTimeout(() => abort.abort(new DOMException('idle', 'TimeoutError')), idleMs);
          yield chunk;
        }
      }
      for await (const line of ndjsonLines(chunks())) yield { ...line, type: file.type, file: file.url };
    } catch (err) {
      throw networkError(this.client.endpoint, file.url, err, what, idleMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The error files as quarantine items: one per OperationOutcome issue, with the issue code and expression but
   * never the diagnostics text (servers may quote resource content there).
   */
  async *errorItems(manifest: ExportManifest): AsyncGenerator<Omit<QuarantineItem, 'endpoint' | 'at'>> {
    for (const file of manifest.error) {
      for await (const line of this.lines(file, manifest.requiresAccessToken)) {
        let oo: { resourceType?: unknown; issue?: Array<{ severity?: unknown; code?: unknown; expression?: unknown }> } | undefined;
        try {
          oo = line.text ? JSON.parse(line.text) : undefined;
        } catch {
          oo = undefined;
        }
        if (!oo || oo.resourceType !== 'OperationOutcome' || !Array.isArray(oo.issue)) {
          yield { resourceType: 'OperationOutcome', path: '(json)', reason: 'unreadable line in an export error file', file: file.url, line: line.line };
          continue;
        }
        for (const issue of oo.issue) {
          const severity = typeof issue.severity === 'string' && /^[a-z]+$/.test(issue.severity) ? issue.severity : 'error';
          const code = typeof issue.code === 'string' && /^[a-z-]+$/.test(issue.code) ? issue.code : 'unknown';
          const expression = Array.isArray(issue.expression) && typeof issue.expression[0] === 'string' && /^[A-Za-z0-9_.[\]()]{1,200}$/.test(issue.expression[0]) ? issue.expression[0] : '(export)';
          yield { resourceType: 'OperationOutcome', path: expression, reason: `export ${severity}: ${code}`, file: file.url, line: line.line };
        }
      }
    }
  }

  /** Tells the server the files were read (`DELETE` on the status URL); failures are logged, not thrown. */
  async delete(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    const log = this.options.log ?? silentFhirLog;
    try {
      const response = await this.client.fetch(this.statusUrl, { method: 'DELETE', what: 'export job delete' });
      await response.body?.cancel();
      if (!response.ok) log.warn({ endpoint: this.client.endpoint.name, status: response.status }, 'fhir export job delete refused');
    } catch (err) {
      log.warn({ endpoint: this.client.endpoint.name, code: (err as FhirError).code }, 'fhir export job delete failed');
    }
  }
}

function sanitiseProgress(value: string | null): string | undefined {
  if (!value) return undefined;
  const clean = value.replace(/[^\x20-\x7e]/g, '').slice(0, 100).trim();
  return clean || undefined;
}
