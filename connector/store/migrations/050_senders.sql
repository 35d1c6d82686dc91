-- Sender addresses: the From addresses outreach may use, each on a domain verified by its published DKIM key.
CREATE TABLE IF NOT EXISTS senders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- A role address of the practice (never a patient's): stored lower-case, one row per address.
  address text NOT NULL UNIQUE CHECK (address = lower(address) AND length(address) <= 320),
  domain text NOT NULL CHECK (domain = lower(domain)),
  display_name text NOT NULL DEFAULT '',
  dkim_selector text CHECK (dkim_selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  -- Set when <selector>._domainkey.<domain> published a DKIM public key at the last check.
  verified_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
