-- DKIM signing keys of sender domains: the RSA private key sealed under the keyring, the public key to publish in DNS.
CREATE TABLE IF NOT EXISTS sending_dkim_keys (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain text NOT NULL CHECK (domain = lower(domain)),
  selector text NOT NULL CHECK (selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  private_key_sealed bytea NOT NULL,
  -- Base64 DER SubjectPublicKeyInfo: the p= of the DKIM TXT record.
  public_key text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  UNIQUE (domain, selector)
);
