-- Escrow portal: sealed messages behind opaque 32-byte link tokens (only their SHA-256 stored), one-time codes, lockout counters and reader sessions.
CREATE TABLE IF NOT EXISTS escrow_messages (
  id bigserial PRIMARY KEY,
  token_hash bytea NOT NULL UNIQUE,
  outbox_id bigint,
  patient_id text NOT NULL,
  purpose text NOT NULL,
  address_sealed bytea NOT NULL,
  content_sealed bytea NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  codes_sent integer NOT NULL DEFAULT 0,
  code_hash bytea,
  code_expires_at timestamptz,
  failed_attempts integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  session_hash bytea,
  session_expires_at timestamptz,
  views integer NOT NULL DEFAULT 0,
  first_viewed_at timestamptz
);
CREATE INDEX IF NOT EXISTS escrow_messages_expiry ON escrow_messages (expires_at);
