// The clinician's approval queue: every campaign waiting for approval. Plain preact taking a ConnectorClient, so a SMART app page can reuse it.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Campaign } from '../../connector/api/contract.js';
import type { ConnectorClient } from '../connector-client.js';
import { CampaignReview } from './campaign-review.js';
import { useLoad } from './use-call.js';

export interface ApprovalQueueProps {
  client: ConnectorClient;
  /** More to show in each campaign's card (the SMART app adds PHI findings and the delivery forecast). */
  details?: (campaign: Campaign) => ComponentChildren;
}

export function ApprovalQueue({ client, details }: ApprovalQueueProps) {
  const [pending, reload] = useLoad(() => client.call('listCampaigns', { query: { status: 'pending-approval' } }), []);
  const [decided, setDecided] = useState<Campaign[]>([]);
  const open = pending.state === 'ready' ? pending.value.campaigns.filter((c) => !decided.some((d) => d.id === c.id)) : [];
  return (
    <div class="queue">
      <div class="row" style="justify-content:space-between">
        <h3>Waiting for approval{pending.state === 'ready' ? ` (${open.length})` : ''}</h3>
        <button class="secondary" name="refresh" onClick={reload}>
          Refresh
        </button>
      </div>
      {pending.state === 'loading' && <div>Loading…</div>}
      {pending.state === 'error' && (
        <div class="error" role="alert">
          {pending.message}
        </div>
      )}
      {pending.state === 'ready' && open.length === 0 && <div>Nothing is waiting for you.</div>}
      {open.map((c) => (
        <CampaignReview key={c.id} campaign={c} client={client} details={details?.(c)} onDecided={(d) => setDecided((all) => [...all, d])} />
      ))}
      {decided.map((d) => (
        <div class="status" role="status" data-decided={d.id} key={d.id}>
          {d.name}: {d.status}
        </div>
      ))}
    </div>
  );
}
