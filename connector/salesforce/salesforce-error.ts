// Turns what Salesforce (or jsforce) throws into SALESFORCE_ERROR naming Salesforce's error code, never its message text.
import { OutreachError, fail } from '../errors.js';

/** Salesforce messages can quote field values (a duplicate e-mail, a name): only the code is kept. */
export function salesforceCode(err: unknown): string {
  const e = err as { errorCode?: unknown; statusCode?: unknown; code?: unknown; name?: unknown } | null;
  for (const candidate of [e?.errorCode, e?.statusCode, e?.code, e?.name]) {
    if (typeof candidate === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(candidate) && candidate !== 'Error') return candidate;
  }
  return 'UNKNOWN_ERROR';
}

/** The error thrown for a refused call; `operation` is ours (`push campaign members`), the code is Salesforce's. */
export function salesforceError(err: unknown, operation: string): OutreachError {
  if (err instanceof OutreachError) return err;
  const code = salesforceCode(err);
  return fail('SALESFORCE_ERROR', `Salesforce refused to ${operation}: ${code}`, { salesforceCode: code, operation });
}

/** The per-record errors of a composite or bulk result, counted by status code. */
export function countCodes(codes: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of codes) out[c] = (out[c] ?? 0) + 1;
  return out;
}
