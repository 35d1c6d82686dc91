// The one error registry: a stable code, an HTTP status and a PHI-free message; mapped to HTTP and OperationOutcome at the edge only.
import type { OperationOutcome } from 'fhir/r4.js';
import { FhirError, type FhirErrorCode } from '../fhir/outcome.js';

interface ErrorSpec {
  status: number;
  /** FHIR issue type (OperationOutcome.issue.code). */
  issue: string;
  /** What it means and what to do; documented in the README. */
  doc: string;
}

export const errorRegistry = {
  // --- request and input
  BAD_REQUEST: { status: 400, issue: 'invalid', doc: 'A request body or query failed validation; the message names the field.' },
  PAYLOAD_TOO_LARGE: { status: 413, issue: 'too-costly', doc: 'The request body is larger than the limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, issue: 'not-supported', doc: 'The request body is not application/json.' },
  NOT_IMPLEMENTED: { status: 501, issue: 'not-supported', doc: 'The operation is part of the API but its service is not installed in this build.' },
  NOT_FOUND: { status: 404, issue: 'not-found', doc: 'The named object does not exist.' },
  CONFLICT: { status: 409, issue: 'conflict', doc: 'The object changed or is in a state that does not allow the operation.' },
  INVALID_CONFIG: { status: 500, issue: 'exception', doc: 'The configuration is invalid; the message names the setting.' },
  // --- sessions and roles
  UNAUTHENTICATED: { status: 401, issue: 'login', doc: 'No valid session: sign in again.' },
  SESSION_EXPIRED: { status: 401, issue: 'expired', doc: 'The session passed its idle or absolute timeout.' },
  FORBIDDEN: { status: 403, issue: 'forbidden', doc: 'Your role does not allow this operation.' },
  LOGIN_FAILED: { status: 401, issue: 'login', doc: 'Wrong user name or password.' },
  LOCKED_OUT: { status: 429, issue: 'throttled', doc: 'Too many failed attempts; wait before trying again.' },
  RATE_LIMITED: { status: 429, issue: 'throttled', doc: 'Too many requests; slow down.' },
  USER_DISABLED: { status: 403, issue: 'forbidden', doc: 'The user account is disabled.' },
  // --- store and keys
  STORE_UNAVAILABLE: { status: 503, issue: 'transient', doc: 'The database cannot be reached.' },
  MIGRATION_FAILED: { status: 500, issue: 'exception', doc: 'A schema migration failed; the store was left unchanged.' },
  WRONG_MASTER_KEY: { status: 500, issue: 'security', doc: 'The master key does not unwrap the data keys: wrong key file or OUTREACH_MASTER_KEY.' },
  DECRYPT_FAILED: { status: 500, issue: 'security', doc: 'A sealed field failed authentication (tampered, or moved to another row).' },
  KEY_NOT_FOUND: { status: 500, issue: 'security', doc: 'A data key referenced by a sealed field is missing.' },
  // --- audit
  AUDIT_CHAIN_BROKEN: { status: 500, issue: 'security', doc: 'The audit hash chain does not verify; the message names the first bad row.' },
  AUDIT_APPEND_ONLY: { status: 403, issue: 'forbidden', doc: 'The audit log refuses updates and deletes.' },
  // --- consent
  NOT_AUTHORIZED_FOR_PURPOSE: { status: 403, issue: 'suppressed', doc: 'The recipient has no active authorization for this purpose and channel.' },
  // --- segments, compose, campaigns
  SEGMENT_INVALID: { status: 400, issue: 'invalid', doc: 'A segment definition is invalid; the message names the path.' },
  SEGMENT_TOO_COMPLEX: { status: 400, issue: 'too-costly', doc: 'A segment definition is too deep or too large.' },
  TEMPLATE_INVALID: { status: 400, issue: 'invalid', doc: 'A template has an unknown merge tag or bad field; the message names the position.' },
  TEMPLATE_PHI_BLOCKED: { status: 422, issue: 'business-rule', doc: 'The subject or preheader holds PHI or a PHI merge tag.' },
  DELIVERY_MODE_NOT_ALLOWED: { status: 422, issue: 'business-rule', doc: 'Clinical merge tags need delivery mode tls-required or escrow.' },
  CAMPAIGN_STATE: { status: 409, issue: 'business-rule', doc: 'The campaign is not in a state that allows this transition.' },
  APPROVAL_VOID: { status: 409, issue: 'business-rule', doc: 'The approval no longer matches the campaign content or audience.' },
  ARCHIVED: { status: 409, issue: 'business-rule', doc: 'The template or segment is archived: new campaigns and journeys cannot use it; the message and field name which one.' },
  // --- delivery
  TLS_REQUIRED_UNAVAILABLE: { status: 502, issue: 'security', doc: 'Verified TLS to the recipient MX is not possible; the message is held.' },
  MX_NOT_FOUND: { status: 502, issue: 'not-found', doc: 'The recipient domain has no usable MX or address record.' },
  SMTP_REJECTED: { status: 502, issue: 'exception', doc: 'The receiving server rejected the message.' },
  PORTAL_LINK_INVALID: { status: 404, issue: 'not-found', doc: 'The escrow link is unknown or expired.' },
  PORTAL_VERIFICATION_FAILED: { status: 401, issue: 'security', doc: 'The one-time code or date of birth did not match.' },
  UNSUBSCRIBE_TOKEN_INVALID: { status: 400, issue: 'invalid', doc: 'The unsubscribe token is malformed or its signature does not verify.' },
  // --- Salesforce
  SALESFORCE_NOT_CONFIGURED: { status: 409, issue: 'not-supported', doc: 'Salesforce is not connected; run `outreach salesforce connect`.' },
  SALESFORCE_ERROR: { status: 502, issue: 'exception', doc: 'Salesforce refused a call; the message holds its error code.' },
  // --- SMART app launch (clinician approval inside the EHR)
  SMART_UNKNOWN_ISS: { status: 400, issue: 'not-found', doc: 'The EHR that launched the app (`iss`) is not registered, or an admin disabled it; run `outreach smart register` or `outreach smart enable`.' },
  SMART_DISCOVERY_FAILED: { status: 502, issue: 'exception', doc: "The EHR's .well-known/smart-configuration or JWKS could not be read or lacks a required field (PKCE S256)." },
  SMART_STATE_INVALID: { status: 400, issue: 'security', doc: 'The authorization response names an unknown, used or expired `state`, or came to another browser: launch again.' },
  SMART_TOKEN_REJECTED: { status: 401, issue: 'security', doc: "The EHR's token endpoint refused the code (used twice, expired, or a PKCE mismatch); the message holds its error." },
  SMART_ID_TOKEN_INVALID: { status: 401, issue: 'security', doc: "The id_token failed validation (signature against the EHR's JWKS, issuer, audience, expiry or nonce)." },
  SMART_NOT_PRACTITIONER: { status: 403, issue: 'forbidden', doc: 'The launching user (`fhirUser`) is not a Practitioner: only clinicians use the approval app.' },
  PRACTITIONER_NOT_LINKED: { status: 403, issue: 'forbidden', doc: 'The EHR practitioner is linked to no clinician account; an admin runs `outreach smart link-practitioner`.' },
  // --- FHIR (raised by fhir/, registered here)
  FHIR_ENDPOINT_UNREACHABLE: { status: 502, issue: 'transient', doc: 'The FHIR endpoint cannot be reached; the message names the endpoint and the cause.' },
  FHIR_ENDPOINT_CONFIG: { status: 400, issue: 'invalid', doc: 'The FHIR endpoint configuration is invalid (URL, key, scopes).' },
  FHIR_DISCOVERY_FAILED: { status: 502, issue: 'exception', doc: 'Neither .well-known/smart-configuration nor the CapabilityStatement named a token URL.' },
  FHIR_TOKEN_REJECTED: { status: 502, issue: 'security', doc: 'The EHR token endpoint rejected our client assertion.' },
  FHIR_HTTP_ERROR: { status: 502, issue: 'exception', doc: 'The FHIR server answered with an error status.' },
  FHIR_TIMEOUT: { status: 504, issue: 'timeout', doc: 'The FHIR server did not answer in time.' },
  FHIR_EXPORT_FAILED: { status: 502, issue: 'exception', doc: 'A Bulk Data $export job failed or was not accepted.' },
  FHIR_INVALID_RESOURCE: { status: 422, issue: 'invalid', doc: 'A FHIR resource failed validation and was quarantined.' },
  INTERNAL: { status: 500, issue: 'exception', doc: 'An unexpected error; the log holds the correlation id.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorRegistry;

// The FHIR layer's codes must all be registered here.
const _fhirCodesRegistered: Record<FhirErrorCode, ErrorSpec> = errorRegistry;
void _fhirCodesRegistered;

/** The error every connector module throws. `message` must never hold PHI. */
export class OutreachError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = errorRegistry[code].doc,
    readonly details: Record<string, string | number | boolean> = {},
  ) {
    super(message);
    this.name = 'OutreachError';
    this.status = errorRegistry[code].status;
  }
}

/** Shorthand: `throw fail('NOT_FOUND', 'campaign 12 not found')`. */
export function fail(code: ErrorCode, message?: string, details?: Record<string, string | number | boolean>): OutreachError {
  return new OutreachError(code, message, details);
}

/** Normalises anything thrown into an OutreachError without leaking its message when it is not ours. */
export function asOutreachError(err: unknown): OutreachError {
  if (err instanceof OutreachError) return err;
  if (err instanceof FhirError) return new OutreachError(err.code, err.message, err.details);
  return new OutreachError('INTERNAL');
}

/** The OperationOutcome body returned at the HTTP edge. */
export function toOperationOutcome(err: OutreachError): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: errorRegistry[err.code].issue as 'invalid',
        details: { coding: [{ system: 'urn:secure-outreach:error', code: err.code }], text: err.message },
        diagnostics: err.message,
        ...(typeof err.details.field === 'string' ? { expression: [err.details.field] } : {}),
      },
    ],
  };
}
