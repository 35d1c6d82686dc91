// One pending campaign as the clinician reviews it: content, audience definition and count, purpose, delivery mode; approve, or reject with a comment.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Campaign } from '../../connector/api/contract.js';
import type { ConnectorClient } from '../connector-client.js';
import { htmlToText } from './compose-panel.js';
import { errorText } from './use-call.js';

const modeLabels: Record<Campaign['deliveryMode'], string> = {
  'tls-required': 'Only over verified TLS (held otherwise)',
  'tls-or-escrow': 'Verified TLS, else escrow-portal notice',
  escrow: 'Always through the escrow portal',
};

export interface CampaignReviewProps {
  campaign: Campaign;
  client: ConnectorClient;
  onDecided(campaign: Campaign): void;
  /** Shown under the content, before the decision (the SMART app's PHI findings and forecast). */
  details?: ComponentChildren;
}

export function CampaignReview({ campaign, client, onDecided, details }: CampaignReviewProps) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const decide = async (decision: 'approve' | 'reject') => {
    if (decision === 'reject' && !comment.trim()) {
      setError('A rejection needs a comment for the marketer.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const text = comment.trim();
      const decided =
        decision === 'approve'
          ? await client.call('approveCampaign', { params: { id: campaign.id }, body: text ? { comment: text } : {} })
          : await client.call('rejectCampaign', { params: { id: campaign.id }, body: { comment: text } });
      onDecided(decided);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <article class="card" data-campaign={campaign.id}>
      <strong>{campaign.name}</strong>
      <dl class="kv">
        <dt>Purpose</dt>
        <dd>{campaign.purpose}</dd>
        <dt>Delivery mode</dt>
        <dd>{modeLabels[campaign.deliveryMode]}</dd>
        <dt>Audience</dt>
        <dd>
          {campaign.audience.label} · <strong>{campaign.audience.count}</strong> recipient(s)
        </dd>
        {campaign.audience.definition && (
          <>
            <dt>Definition</dt>
            <dd>
              <code>{JSON.stringify(campaign.audience.definition)}</code>
            </dd>
          </>
        )}
        <dt>Submitted by</dt>
        <dd>
          {campaign.createdBy} · {campaign.createdAt.slice(0, 16).replace('T', ' ')}
        </dd>
      </dl>
      <label>Content</label>
      <div class="preview">
        <strong>{campaign.content.subject}</strong>
        {campaign.content.preheader ? `\n${campaign.content.preheader}` : ''}
        {'\n\n'}
        {htmlToText(campaign.content.body)}
      </div>
      {details}
      <label>Comment</label>
      <textarea name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
      <div class="row" style="margin-top:6px">
        <button name="approve" disabled={busy} onClick={() => decide('approve')}>
          Approve
        </button>
        <button name="reject" class="danger" disabled={busy} onClick={() => decide('reject')}>
          Reject
        </button>
      </div>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
    </article>
  );
}
