-- Campaigns: what is sent (a template version), to whom (a segment version or one contact), why (purpose), how (delivery mode), the clinician decisions and the approval hash that binds them; never patient data in the clear.
CREATE TABLE IF NOT EXISTS campaigns (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- A marketer's label (criteria, never patient data).
  name text NOT NULL,
  status text NOT NULL DEFAULT 'draft'
    CHECK (status IN ('draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'sending', 'sent', 'cancelled')),
  purpose text NOT NULL,
  delivery_mode text NOT NULL CHECK (delivery_mode IN ('tls-required', 'tls-or-escrow', 'escrow')),
  template_version_id bigint NOT NULL REFERENCES template_versions (id),
  audience_kind text NOT NULL CHECK (audience_kind IN ('segment', 'contact')),
  segment_version_id bigint REFERENCES segment_versions (id),
  -- One contact: the internal patient id, and the CRM id it was chosen by, sealed.
  contact_patient_id bigint,
  contact_sealed bytea,
  CHECK ((audience_kind = 'segment' AND segment_version_id IS NOT NULL) OR (audience_kind = 'contact' AND contact_patient_id IS NOT NULL)),
  -- Bumped by every edit: an approval is of one revision.
  revision integer NOT NULL DEFAULT 1,
  -- SHA-256 (hex) over template content hash, audience, merge tags, delivery mode and purpose while an approval stands.
  approval_hash text CHECK (approval_hash ~ '^[0-9a-f]{64}$'),
  -- Counts approvals granted so far: outbox idempotency keys carry it, so a re-approved campaign can queue again.
  approval_seq integer NOT NULL DEFAULT 0,
  approved_by text,
  approved_at timestamptz,
  -- The audience frozen at approval (segment_snapshots).
  snapshot_id bigint REFERENCES segment_snapshots (id),
  audience_count integer,
  scheduled_at timestamptz,
  -- Exclusion counts by reason and the number queued, from the last send run (never names).
  send_report jsonb,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS campaigns_status ON campaigns (status, id);
CREATE INDEX IF NOT EXISTS campaigns_due ON campaigns (scheduled_at) WHERE status = 'scheduled';

-- Every decision on a campaign, in order: submissions, approvals, rejections, withdrawals, and approvals voided by an edit.
CREATE TABLE IF NOT EXISTS campaign_decisions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  decision text NOT NULL CHECK (decision IN ('submitted', 'approved', 'rejected', 'withdrawn', 'voided', 'cancelled')),
  by_user text NOT NULL,
  role text NOT NULL,
  revision integer NOT NULL,
  approval_hash text,
  -- A clinician's free-text comment may name a patient or a condition: sealed.
  comment_sealed bytea,
  at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS campaign_decisions_campaign ON campaign_decisions (campaign_id, id);
