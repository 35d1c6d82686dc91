// Every capability's route handlers, built from the app's services: the one list the server registers.
import type { App } from '../../app.js';
import { createAuditBatcher } from '../audit-batcher.js';
import type { Handlers } from '../handler.js';
import type { ApiMetrics } from '../metrics.js';
import { adminHandlers } from './admin.js';
import { auditHandlers } from './audit.js';
import { composeScanHandlers } from './compose.js';
import { consentHandlers } from './consent.js';
import { segmentHandlers } from './segments.js';
import { sessionHandlers } from './session.js';
import { templateHandlers } from './templates.js';
import { userHandlers } from './users.js';

export function buildHandlers(app: App, deps: { metrics: ApiMetrics; version: string }): Handlers {
  // PHI reads are audited through one group-committing writer per server.
  const auditRead = createAuditBatcher(app.audit);
  return {
    ...sessionHandlers(app),
    ...userHandlers(app),
    ...consentHandlers(app, auditRead),
    ...auditHandlers(app),
    ...composeScanHandlers(),
    ...segmentHandlers(app),
    ...templateHandlers(app),
    ...adminHandlers(app, { ...deps, senders: app.senders }),
  };
}
