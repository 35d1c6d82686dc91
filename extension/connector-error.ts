// The error a failed connector call raises in the extension: the connector's stable code and a PHI-free message.
import type { Failure } from './messages.js';

export class ConnectorCallError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  constructor(failure: Failure) {
    super(failure.message);
    this.name = 'ConnectorCallError';
    this.code = failure.code;
    this.field = failure.field;
  }
}
