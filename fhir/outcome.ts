// FHIR-side failures: a stable code plus a PHI-free message, shaped as an OperationOutcome at the edge.
import type { OperationOutcome } from 'fhir/r4.js';

export type FhirErrorCode =
  | 'FHIR_ENDPOINT_UNREACHABLE'
  | 'FHIR_ENDPOINT_CONFIG'
  | 'FHIR_DISCOVERY_FAILED'
  | 'FHIR_TOKEN_REJECTED'
  | 'FHIR_HTTP_ERROR'
  | 'FHIR_TIMEOUT'
  | 'FHIR_EXPORT_FAILED'
  | 'FHIR_INVALID_RESOURCE';

/** An error raised by the FHIR layer. `message` never holds resource content. */
export class FhirError extends Error {
  constructor(
    readonly code: FhirErrorCode,
    message: string,
    readonly details: Record<string, string | number | boolean> = {},
  ) {
    super(message);
    this.name = 'FhirError';
  }
}

/** Builds a one-issue OperationOutcome (Medplum style). */
export function outcome(
  severity: 'error' | 'warning' | 'information',
  code: string,
  diagnostics: string,
  expression?: string[],
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code: code as 'invalid', diagnostics, ...(expression ? { expression } : {}) }],
  };
}
