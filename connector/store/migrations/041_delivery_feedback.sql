-- Delivery feedback: suppressions from hard bounces and complaints (keyed by the address's blind index and the patient), and a PHI-free record of every report received.
CREATE TABLE IF NOT EXISTS delivery_suppressions (
  id bigserial PRIMARY KEY,
  -- HMAC blind index of the normalised address (never the address itself).
  address_index bytea,
  patient_id text,
  reason text NOT NULL CHECK (reason IN ('hard-bounce', 'complaint')),
  detail text,
  outbox_id bigint,
  created_at timestamptz NOT NULL,
  CHECK (address_index IS NOT NULL OR patient_id IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS delivery_suppressions_address ON delivery_suppressions (address_index) WHERE address_index IS NOT NULL;
CREATE INDEX IF NOT EXISTS delivery_suppressions_patient ON delivery_suppressions (patient_id) WHERE patient_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS delivery_feedback (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('hard-bounce', 'soft-bounce', 'complaint', 'delivered', 'unrecognised')),
  outbox_id bigint,
  status text,
  received_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_feedback_outbox ON delivery_feedback (outbox_id);
