// Structured logging (pino) that refuses PHI: PHI-branded fields fail to compile and known PHI keys are redacted.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { NotPhi } from '../fhir/phi.js';

const phiKeys = [
  'name', 'given', 'family', 'firstName', 'lastName', 'email', 'phone', 'telecom', 'address', 'line', 'city',
  'postalCode', 'birthDate', 'dob', 'mrn', 'ssn', 'condition', 'conditions', 'display', 'value', 'valueQuantity',
  'resource', 'body', 'html', 'text', 'subject', 'password', 'token', 'authorization', 'cookie', 'secret', 'key',
];
/** Redaction paths: the PHI keys at the top level and one level down. */
export const redactPaths = [...phiKeys, ...phiKeys.map((k) => `*.${k}`)];

type Fields = Record<string, unknown>;
type SafeFields<F extends Fields> = { [K in keyof F]: NotPhi<F[K]> };

export interface Log {
  trace<F extends Fields>(fields: SafeFields<F>, msg: string): void;
  debug<F extends Fields>(fields: SafeFields<F>, msg: string): void;
  info<F extends Fields>(fields: SafeFields<F>, msg: string): void;
  warn<F extends Fields>(fields: SafeFields<F>, msg: string): void;
  error<F extends Fields>(fields: SafeFields<F>, msg: string): void;
  child<F extends Fields>(bindings: SafeFields<F>): Log;
}

export interface LoggerOptions {
  level?: string;
  /** Also append JSON lines to this file. */
  file?: string;
  /** Where to write instead of stderr (tests capture logs here). */
  destination?: NodeJS.WritableStream;
}

/** Errors are logged by code and PHI-free message only; never a cause chain that may quote input. */
function errSerializer(err: unknown): Record<string, unknown> {
  if (err && typeof err === 'object') {
    const e = err as { name?: string; code?: unknown; message?: string; status?: number };
    return { type: e.name, code: e.code, status: e.status, message: e.message };
  }
  return { type: typeof err };
}

export function createLogger(options: LoggerOptions = {}): Log {
  const streams: pino.StreamEntry[] = [{ stream: options.destination ?? pino.destination(2) }];
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    streams.push({ stream: pino.destination({ dest: options.file, mkdir: true, sync: false }) });
  }
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: { err: errSerializer, error: errSerializer },
      base: { svc: 'outreach' },
    },
    pino.multistream(streams),
  ) as unknown as Log;
}

/** A logger that drops everything (library defaults). */
export const silentLog: Log = createLogger({ level: 'silent' });
