// Content script for Salesforce Lightning (isolated world): the registered list of features.
import { messagingClient } from '../api.js';
import { composePanel } from '../features/compose-panel.js';
import { consentBadge } from '../features/consent-badge.js';
import { phiWarnings } from '../features/phi-warnings.js';
import { runFeatures, timePreactRenders } from './feature-runner.js';
import { followSession } from './session-follow.js';

export const salesforceFeatures = [consentBadge, phiWarnings, composePanel];

timePreactRenders();
const running = runFeatures(window, salesforceFeatures, messagingClient());
followSession(running.restart);
