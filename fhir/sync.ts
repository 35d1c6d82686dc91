// Syncs one endpoint into a FactsSink: search paging or Bulk $export, validation with quarantine, the facts fold in batches.
import type { Consent } from 'fhir/r4.js';
import { BulkExportJob, type ExportFile, type ExportLevel } from './bulk-export.js';
import { FhirClient, type FhirClientOptions } from './client.js';
import { FactsFolder, emptyFacts, type DeriveOptions } from './derive-facts.js';
import type { EndpointConfig } from './endpoint.js';
import type { FactsSink, QuarantineItem } from './facts-sink.js';
import { FhirError } from './outcome.js';
import type { PatientFacts } from './patient-facts.js';
import { readResourceTypes, validateResource, type ReadResource, type ReadResourceType } from './resources.js';
import { silentFhirLog, type FhirLog } from './transport.js';

export type SyncMode = 'search' | 'bulk';

export interface SyncProgress {
  phase: 'export' | 'read' | 'write' | 'done';
  /** Resources (or NDJSON lines) read so far. */
  read: number;
  /** Expected total when the server said (search `total`, manifest `count`). */
  total?: number;
  resourceType?: string;
  /** The server's X-Progress while an export runs. */
  exportProgress?: string;
}

export interface SyncSummary {
  endpoint: string;
  mode: SyncMode;
  /** The `_since`/`_lastUpdated` this sync started from (absent for a full sync). */
  since?: string;
  /** Stored as the next sync's start: the export's transactionTime, or this search sync's start time. */
  nextSince: string;
  /** Resources read per resource type (valid, quarantined and skipped alike); unparsable lines count as `(unparsable)`. */
  resources: Record<string, number>;
  quarantined: number;
  patientsUpdated: number;
  consents: number;
  startedAt: string;
  durationMs: number;
}

export interface SyncOptions {
  mode?: SyncMode;
  /** Start from this instant; default: the endpoint's stored sync state. */
  since?: string;
  /** Ignore the stored state and read everything. */
  full?: boolean;
  /** Resource types to read (default: the whole subset). */
  types?: readonly ReadResourceType[];
  /** Bulk mode: system, Patient (default) or Group export. */
  exportLevel?: ExportLevel;
  /** Resources folded per load/write round trip to the sink (default 2000). */
  batchSize?: number;
  onProgress?: (progress: SyncProgress) => void;
  /** Called after each committed batch with the source patient ids written (audit hooks in here). */
  onPatientsSynced?: (patientIds: readonly string[]) => void | Promise<void>;
  client?: FhirClient;
  clientOptions?: FhirClientOptions;
  /** Bulk polling overrides (tests and impatient operators). */
  exportPolling?: { defaultPollWaitMs?: number; maxPollWaitMs?: number; pollTimeoutMs?: number };
  derive?: Omit<DeriveOptions, 'source'>;
  log?: FhirLog;
  now?: () => Date;
}

/** Directory resources first, so references to practitioners and payers resolve while the rest folds. */
const typeOrder: Record<string, number> = { Practitioner: 0, Organization: 1, Patient: 2 };
const orderOf = (type: string) => typeOrder[type] ?? 3;

/** Reads an endpoint and writes facts, consents, quarantine and the next sync state to the sink. */
export async function syncEndpoint(endpoint: EndpointConfig, sink: FactsSink, options: SyncOptions = {}): Promise<SyncSummary> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const log = options.log ?? silentFhirLog;
  const mode = options.mode ?? 'search';
  const client = options.client ?? new FhirClient(endpoint, { log, ...options.clientOptions });
  const state = options.full ? undefined : await sink.getSyncState(endpoint.name);
  const since = options.full ? undefined : (options.since ?? state?.since);
  const types = [...(options.types ?? readResourceTypes)].sort((a, b) => orderOf(a) - orderOf(b));
  const ingest = new Ingest(endpoint.name, sink, options, log, now);
  log.info({ endpoint: endpoint.name, mode, incremental: Boolean(since) }, 'fhir sync started');

  let nextSince: string;
  if (mode === 'search') {
    for (const type of types) {
      // Practitioners and payers are read whole: an incremental sync still needs the names of unchanged ones.
      const params: Record<string, string> = since && orderOf(type) > 1 ? { _lastUpdated: `gt${since}` } : {};
      let total: number | undefined;
      for await (const page of client.searchPages(type, params)) {
        if (total === undefined && typeof page.total === 'number') total = page.total;
        for (const entry of page.entry ?? []) {
          if (!entry.resource || entry.search?.mode === 'outcome') continue;
          await ingest.accept(entry.resource, {}, total);
        }
      }
      await ingest.endOfType();
    }
    nextSince = started.toISOString();
  } else {
    const job = await BulkExportJob.kickOff(client, {
      level: options.exportLevel ?? { kind: 'patient' },
      types,
      ...(since ? { since } : {}),
      ...options.exportPolling,
      log,
      onStatus: (s) => options.onProgress?.({ phase: 'export', read: 0, ...(s.progress ? { exportProgress: s.progress } : {}) }),
    });
    try {
      const manifest = await job.manifest();
      const output = [...manifest.output].sort((a, b) => orderOf(a.type) - orderOf(b.type));
      if (!output.some((f) => f.type === 'Practitioner') && (options.exportLevel?.kind ?? 'patient') !== 'system') {
        await readDirectoryBySearch(client, ingest, types, log);
      }
      const total = output.every((f) => f.count !== undefined) ? output.reduce((n, f) => n + (f.count ?? 0), 0) : undefined;
      for (const file of output) {
        const where = fileLabel(file);
        for await (const line of job.lines(file, manifest.requiresAccessToken)) {
          if (line.tooLong) {
            await ingest.quarantineLine({ path: '(json)', reason: 'line longer than the limit', file: where, line: line.line, resourceType: file.type });
            continue;
          }
          let parsed: unknown;
          try {
            parsed = JSON.parse(line.text!);
          } catch {
            await ingest.quarantineLine({ path: '(json)', reason: 'malformed JSON', file: where, line: line.line, resourceType: file.type });
            continue;
          }
          await ingest.accept(parsed, { file: where, line: line.line }, total);
        }
        await ingest.endOfType();
      }
      for await (const item of job.errorItems(manifest)) await ingest.quarantineLine({ ...item, file: item.file ? fileLabel({ url: item.file }) : undefined });
      nextSince = manifest.transactionTime;
    } finally {
      await job.delete();
    }
  }
  await ingest.finish();
  await sink.setSyncState({ endpoint: endpoint.name, since: nextSince, mode, updatedAt: now().toISOString() });
  const summary: SyncSummary = {
    endpoint: endpoint.name,
    mode,
    ...(since ? { since } : {}),
    nextSince,
    resources: ingest.counts,
    quarantined: ingest.quarantined,
    patientsUpdated: ingest.patients.size,
    consents: ingest.consents,
    startedAt: started.toISOString(),
    durationMs: now().getTime() - started.getTime(),
  };
  options.onProgress?.({ phase: 'done', read: ingest.read });
  log.info({ endpoint: endpoint.name, mode, patients: summary.patientsUpdated, quarantined: summary.quarantined, durationMs: summary.durationMs }, 'fhir sync finished');
  return summary;
}

/** A file URL without its query (pre-signed download URLs carry credentials there). */
function fileLabel(file: Pick<ExportFile, 'url'>): string {
  try {
    const u = new URL(file.url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

/** Patient-level exports leave practitioners and payers out: read them by search when the scopes allow. */
async function readDirectoryBySearch(client: FhirClient, ingest: Ingest, types: readonly string[], log: FhirLog): Promise<void> {
  for (const type of ['Practitioner', 'Organization'].filter((t) => types.includes(t))) {
    try {
      for await (const resource of client.search(type)) await ingest.accept(resource, {});
    } catch (err) {
      if (!(err instanceof FhirError) || err.code !== 'FHIR_HTTP_ERROR') throw err;
      log.warn({ endpoint: client.endpoint.name, resourceType: type, status: Number(err.details.status ?? 0) }, 'fhir directory search refused; names stay unresolved');
    }
  }
}

/** The streaming half of a sync: validation, quarantine, routing and the batched fold. */
class Ingest {
  readonly counts: Record<string, number> = {};
  readonly patients = new Set<string>();
  read = 0;
  quarantined = 0;
  consents = 0;
  private readonly folder: FactsFolder;
  private pending = new Map<string, ReadResource[]>();
  private pendingCount = 0;
  private consentBuffer: Consent[] = [];
  private quarantineBuffer: QuarantineItem[] = [];
  private readonly batchSize: number;
  private lastReported = 0;
  private currentType: string | undefined;

  constructor(
    private readonly endpoint: string,
    private readonly sink: FactsSink,
    private readonly options: SyncOptions,
    private readonly log: FhirLog,
    private readonly now: () => Date,
  ) {
    this.folder = new FactsFolder({ ...options.derive, source: endpoint, now: options.derive?.now ?? now() });
    this.batchSize = options.batchSize ?? 2000;
  }

  async accept(input: unknown, at: { file?: string; line?: number }, total?: number): Promise<void> {
    this.read++;
    const v = validateResource(input);
    const type = v.ok === true ? v.resource.resourceType : v.ok === 'skipped' ? v.resourceType : (v.issue.resourceType ?? '(invalid)');
    this.counts[type] = (this.counts[type] ?? 0) + 1;
    this.report(type, total);
    if (v.ok === 'skipped') return;
    if (v.ok === false) {
      await this.quarantine({ ...v.issue, ...at });
      return;
    }
    const resource = v.resource;
    if (resource.resourceType === 'Practitioner' || resource.resourceType === 'Organization') {
      this.folder.addToDirectory(resource);
      return;
    }
    if (resource.resourceType === 'Consent') {
      this.consentBuffer.push(resource as unknown as Consent);
      // Consents refer to patients that may arrive later in the stream (another NDJSON file, a later page): hold
      // them until the end, and when many pile up write the pending facts first so most references resolve.
      if (this.consentBuffer.length >= 50_000) {
        await this.flushFacts();
        await this.flushConsents();
      }
      return;
    }
    const patientId = this.folder.patientOf(resource);
    if (!patientId) {
      const field = resource.resourceType === 'Coverage' ? 'beneficiary' : resource.resourceType === 'Appointment' ? 'participant' : resource.resourceType === 'Patient' ? 'id' : 'subject';
      await this.quarantine({ resourceType: resource.resourceType, resourceId: resource.id, path: `${resource.resourceType}.${field}`, reason: field === 'id' ? 'missing id' : 'does not reference a Patient', ...at });
      return;
    }
    let list = this.pending.get(patientId);
    if (!list) this.pending.set(patientId, (list = []));
    list.push(resource);
    if (++this.pendingCount >= this.batchSize) await this.flushFacts();
  }

  /** An NDJSON line that never became a resource. */
  async quarantineLine(item: Omit<QuarantineItem, 'endpoint' | 'at'>): Promise<void> {
    this.read++;
    const key = item.path === '(json)' ? '(unparsable)' : (item.resourceType ?? '(unknown)');
    this.counts[key] = (this.counts[key] ?? 0) + 1;
    await this.quarantine(item);
  }

  private async quarantine(item: Omit<QuarantineItem, 'endpoint' | 'at'>): Promise<void> {
    this.quarantined++;
    this.quarantineBuffer.push({ ...clean(item), endpoint: this.endpoint, at: this.now().toISOString() });
    this.log.warn({ endpoint: this.endpoint, resourceType: item.resourceType, path: item.path, reason: item.reason, line: item.line }, 'fhir resource quarantined');
    if (this.quarantineBuffer.length >= 500) await this.flushQuarantine();
  }

  async endOfType(): Promise<void> {
    this.report(this.currentType ?? '', undefined, true);
  }

  async finish(): Promise<void> {
    await this.flushFacts();
    await this.flushConsents();
    await this.flushQuarantine();
  }

  private report(type: string, total: number | undefined, force = false): void {
    if (!this.options.onProgress) return;
    if (!force && type === this.currentType && this.read - this.lastReported < 250) return;
    this.currentType = type;
    this.lastReported = this.read;
    this.options.onProgress({ phase: 'read', read: this.read, resourceType: type, ...(total !== undefined ? { total } : {}) });
  }

  private async flushFacts(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.pendingCount = 0;
    const ids = [...batch.keys()];
    const existing = await this.sink.loadFacts(this.endpoint, ids);
    const out: PatientFacts[] = [];
    for (const [id, resources] of batch) {
      const facts = existing.get(id) ?? emptyFacts(this.endpoint, id);
      for (const r of resources) this.folder.fold(facts, r);
      out.push(this.folder.finish(facts));
    }
    this.options.onProgress?.({ phase: 'write', read: this.read });
    await this.sink.writeFacts(out);
    for (const id of ids) this.patients.add(id);
    await this.options.onPatientsSynced?.(ids);
  }

  private async flushConsents(): Promise<void> {
    if (this.consentBuffer.length === 0) return;
    const batch = this.consentBuffer;
    this.consentBuffer = [];
    await this.sink.writeConsents(this.endpoint, batch);
    this.consents += batch.length;
  }

  private async flushQuarantine(): Promise<void> {
    if (this.quarantineBuffer.length === 0) return;
    const batch = this.quarantineBuffer;
    this.quarantineBuffer = [];
    await this.sink.quarantine(batch);
  }
}

function clean<T extends object>(item: T): T {
  return Object.fromEntries(Object.entries(item).filter(([, v]) => v !== undefined)) as T;
}
