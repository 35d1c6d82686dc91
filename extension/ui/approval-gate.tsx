// The approval queue for clinicians only: other roles see why there is nothing to approve (marketers compose, admins run the system, clinicians approve).
import type { ConnectorClient } from '../connector-client.js';
import { ApprovalQueue } from './approval-queue.js';
import { useLoad } from './use-call.js';

export function ApprovalGate({ client }: { client: ConnectorClient }) {
  const [me] = useLoad(() => client.call('currentSession', {}), []);
  if (me.state === 'loading') return <div>Loading…</div>;
  if (me.state === 'error')
    return (
      <div class="error" role="alert">
        {me.message}
      </div>
    );
  // The connector enforces the roles; this spares other roles a queue they could not act on.
  if (me.value.user.role !== 'clinician') {
    return (
      <div class="status" data-part="role">
        Approving campaigns needs the clinician role; you are signed in as {me.value.user.role}.
      </div>
    );
  }
  return <ApprovalQueue client={client} />;
}
