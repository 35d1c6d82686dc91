// Every capability's route handlers, built from the app's services: the one list the server registers.
import type { App } from '../../app.js';
import { createAuditBatcher } from '../audit-batcher.js';
import type { Handlers } from '../handler.js';
import type { ApiMetrics } from '../metrics.js';
import { adminHandlers } from './admin.js';
import { auditHandlers } from './audit.js';
import { campaignHandlers } from './campaigns.js';
import { composeScanHandlers } from './compose.js';
import { consentHandlers } from './consent.js';
import { endpointRoutes } from './endpoints.js';
import { journeyHandlers } from './journeys.js';
import { salesforceHandlers } from './salesforce.js';
import { segmentHandlers } from './segments.js';
import { sessionHandlers } from './session.js';
import { templateHandlers } from './templates.js';
import { userHandlers } from './users.js';

export interface BuiltRoutes {
  handlers: Handlers;
  /** The connector's public signing keys (SMART backend services: the EHR fetches them). */
  jwks(): Promise<{ keys: Array<Record<string, unknown>> }>;
  /** Settles when background work started by requests (FHIR syncs) has ended. */
  idle(): Promise<void>;
}

export function buildHandlers(app: App, deps: { metrics: ApiMetrics; version: string }): BuiltRoutes {
  // PHI reads are audited through one group-committing writer per server.
  const auditRead = createAuditBatcher(app.audit);
  const endpoints = endpointRoutes(app);
  return {
    handlers: {
      ...sessionHandlers(app),
      ...userHandlers(app),
      ...consentHandlers(app, auditRead),
      ...auditHandlers(app),
      ...composeScanHandlers(),
      ...segmentHandlers(app),
      ...templateHandlers(app),
      ...campaignHandlers(app),
      ...journeyHandlers(app),
      ...endpoints.handlers,
      ...adminHandlers(app, { ...deps, senders: app.senders }),
      ...salesforceHandlers(app),
    },
    jwks: endpoints.jwks,
    idle: endpoints.idle,
  };
}
