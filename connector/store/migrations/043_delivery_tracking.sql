-- Tracking and webhooks: opaque open/click tokens with their targets sealed server-side, the events they record (machine prefetch flagged), and signed webhook deliveries with retry and replay.
CREATE TABLE IF NOT EXISTS tracking_tokens (
  token_hash bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('open', 'click')),
  outbox_id bigint NOT NULL,
  campaign_id text NOT NULL,
  target_sealed bytea,
  created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tracking_tokens_outbox ON tracking_tokens (outbox_id);

CREATE TABLE IF NOT EXISTS tracking_events (
  id bigserial PRIMARY KEY,
  outbox_id bigint NOT NULL,
  campaign_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('open', 'click')),
  agent text NOT NULL CHECK (agent IN ('human', 'apple-mpp', 'google-proxy', 'yahoo-proxy', 'scanner')),
  machine boolean NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tracking_events_campaign ON tracking_events (campaign_id, kind);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id bigserial PRIMARY KEY,
  event_id text NOT NULL,
  endpoint text NOT NULL,
  event_type text NOT NULL,
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  last_status integer,
  created_at timestamptz NOT NULL,
  delivered_at timestamptz,
  UNIQUE (event_id, endpoint)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
