-- FHIR endpoints the connector syncs from: URL, SMART client and scopes; the private key is sealed (AAD fhir_endpoints|private_key|name).
CREATE TABLE IF NOT EXISTS fhir_endpoints (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  base_url text NOT NULL,
  auth text NOT NULL CHECK (auth IN ('smart-backend', 'none')),
  client_id text,
  alg text CHECK (alg IN ('RS384', 'ES384')),
  kid text,
  -- JSON array of SMART scopes (v1 system/*.read or v2 system/*.rs).
  scopes jsonb NOT NULL,
  token_url text,
  -- The PEM or JWK private key, sealed by the keyring; never selected by the listing query.
  private_key bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (auth = 'none' OR (client_id IS NOT NULL AND private_key IS NOT NULL))
);

INSERT INTO sealed_columns (table_name, column_name, id_column) VALUES ('fhir_endpoints', 'private_key', 'name')
  ON CONFLICT DO NOTHING;
