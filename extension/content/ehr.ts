// Content script for EHR origins an admin granted (registered at runtime): the clinician's approval queue.
import { messagingClient } from '../api.js';
import { approvalLauncher } from '../features/approval-launcher.js';
import { runFeatures, timePreactRenders } from './feature-runner.js';
import { followSession } from './session-follow.js';

// The script is injected again if the registration changes; one launcher per page is enough.
const marker = Symbol.for('secure-outreach.ehr');
const scope = globalThis as Record<symbol, unknown>;
if (!scope[marker]) {
  scope[marker] = true;
  timePreactRenders();
  const running = runFeatures(window, [approvalLauncher], messagingClient());
  followSession(running.restart);
}
