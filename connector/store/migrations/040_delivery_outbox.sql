-- Delivery outbox: one row per message (state, attempts, lease, stable Message-ID, idempotency key, mode, consent version, TLS evidence, SMTP response) and one row per attempt; never message content.
CREATE TABLE IF NOT EXISTS delivery_outbox (
  id bigserial PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  message_id text NOT NULL UNIQUE,
  campaign_id text NOT NULL,
  template_version integer NOT NULL,
  patient_id text NOT NULL,
  purpose text NOT NULL,
  channel text NOT NULL DEFAULT 'email',
  delivery_mode text NOT NULL CHECK (delivery_mode IN ('tls-required', 'tls-or-escrow', 'escrow')),
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'sending', 'held', 'delivered', 'notice_sent', 'failed', 'cancelled')),
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 12,
  next_attempt_at timestamptz NOT NULL,
  lease_owner text,
  lease_until timestamptz,
  consent_version text,
  delivered_as text CHECK (delivered_as IN ('message', 'notice', 'opportunistic')),
  recipient_domain text,
  tls_evidence jsonb,
  smtp_response text,
  last_error text,
  cancel_reason text,
  -- Set when a lease expired mid-send: the earlier attempt may have reached the server, so a second copy is possible.
  possible_duplicate boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS delivery_outbox_due ON delivery_outbox (next_attempt_at, id) WHERE state IN ('queued', 'held', 'sending');
CREATE INDEX IF NOT EXISTS delivery_outbox_patient ON delivery_outbox (patient_id) WHERE state IN ('queued', 'held');
CREATE INDEX IF NOT EXISTS delivery_outbox_campaign ON delivery_outbox (campaign_id, state);

-- Written when an attempt ends (in the same transaction as the outbox row); an attempt cut short by a crash leaves
-- no row here, and the next claim flags the message possible_duplicate instead.
CREATE TABLE IF NOT EXISTS delivery_attempts (
  outbox_id bigint NOT NULL REFERENCES delivery_outbox (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  worker text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  outcome text NOT NULL,
  smtp_response text,
  PRIMARY KEY (outbox_id, attempt)
);
