// Errors at the HTTP edge: zod issues, fastify's own failures and thrown errors become one OperationOutcome, never PHI, never a stack.
import type { z } from 'zod';
import { asOutreachError, fail, OutreachError } from '../errors.js';

/** A field name we may echo back: a plain identifier (a key made of an e-mail address or free text is not echoed). */
const echoable = /^[A-Za-z_$][A-Za-z0-9_$-]{0,63}$/;

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : echoable.test(String(p)) ? String(p) : '(field)')).join('.').replace(/\.\[/g, '[');
}

/**
 * The first zod issue as BAD_REQUEST naming the field (`expression`). Messages are built from the issue kind, not
 * copied from the input, so a value the caller sent (which may be PHI) never comes back in the error.
 */
export function validationError(part: 'params' | 'query' | 'body', error: z.ZodError): OutreachError {
  const issue = error.issues[0]!;
  let path = [...issue.path];
  let message: string;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      if (echoable.test(key)) path = [...path, key];
      message = 'unknown field';
      break;
    }
    case 'invalid_type':
      message = `expected ${issue.expected}`;
      break;
    case 'invalid_value':
      message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`.slice(0, 300);
      break;
    default:
      // Our own schemas' messages (regex explanations, size limits, the segment DSL's path errors).
      message = issue.message.slice(0, 300);
  }
  const field = pathText(path) || part;
  return fail('BAD_REQUEST', `${field}: ${message}`, { field, in: part });
}

/** Fastify's parsing failures as registry errors. */
export function edgeError(err: unknown): OutreachError {
  if (err instanceof OutreachError) return err;
  const e = err as { code?: string; statusCode?: number };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fail('PAYLOAD_TOO_LARGE', 'the request body is larger than the limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? fail('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json')
        : fail('BAD_REQUEST', 'the Content-Length does not match the body', { field: 'body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return fail('BAD_REQUEST', 'the body is empty but the Content-Type says JSON', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return fail('BAD_REQUEST', 'the body is not valid JSON', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_TYPE':
      return fail('UNSUPPORTED_MEDIA_TYPE', 'the Content-Type header is malformed');
    default:
      break;
  }
  // JSON.parse failures (and prototype-poisoning refusals) surface as 400 SyntaxErrors.
  if (err instanceof SyntaxError || (e?.statusCode === 400 && typeof e.code !== 'string')) {
    return fail('BAD_REQUEST', 'the body is not valid JSON', { field: 'body' });
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return fail('PAYLOAD_TOO_LARGE', 'the request is larger than the limit');
    if (e.statusCode === 415) return fail('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    return fail('BAD_REQUEST', 'the request is malformed');
  }
  return asOutreachError(err);
}
