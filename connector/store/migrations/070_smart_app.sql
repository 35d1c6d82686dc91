-- SMART on FHIR app launch: registered EHRs, practitioner-to-clinician links, pending launches, browser sessions, and the EHR identity on campaign decisions.
CREATE TABLE IF NOT EXISTS smart_ehrs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  -- The FHIR base URL the EHR sends as `iss` (no trailing slash).
  iss text NOT NULL UNIQUE,
  client_id text NOT NULL,
  redirect_uri text NOT NULL,
  -- Origins allowed to frame the app (CSP frame-ancestors); JSON array of origins.
  frame_origins jsonb NOT NULL,
  -- Unlinked practitioners of this EHR get a clinician account at first launch.
  auto_provision boolean NOT NULL DEFAULT false,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  disabled_at timestamptz
);

-- Which clinician account a Practitioner of an EHR is (the admin's link, or an auto-provisioned account).
CREATE TABLE IF NOT EXISTS smart_practitioners (
  ehr_id bigint NOT NULL REFERENCES smart_ehrs (id) ON DELETE CASCADE,
  -- `Practitioner/<id>` relative to the EHR's FHIR base.
  practitioner text NOT NULL CHECK (practitioner ~ '^Practitioner/[A-Za-z0-9.-]{1,64}$'),
  user_id bigint NOT NULL REFERENCES users (id),
  provisioned boolean NOT NULL DEFAULT false,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (ehr_id, practitioner)
);

-- An authorization request in flight: found by the SHA-256 of its `state`, used once, bound to the browser that started it.
CREATE TABLE IF NOT EXISTS smart_launches (
  state_hash bytea PRIMARY KEY,
  ehr_id bigint NOT NULL REFERENCES smart_ehrs (id) ON DELETE CASCADE,
  -- SHA-256 of the launch cookie set on the browser that started the launch.
  binding_hash bytea NOT NULL,
  nonce text NOT NULL,
  -- The PKCE code verifier and the endpoints discovered at launch, sealed.
  verifier_sealed bytea NOT NULL,
  token_endpoint text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('ehr', 'standalone')),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz
);
CREATE INDEX IF NOT EXISTS smart_launches_expiry ON smart_launches (expires_at);

-- A browser session of the app: the cookie is stored only as SHA-256; the EHR's access token stays here, sealed.
CREATE TABLE IF NOT EXISTS smart_sessions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash bytea NOT NULL UNIQUE,
  ehr_id bigint NOT NULL REFERENCES smart_ehrs (id) ON DELETE CASCADE,
  practitioner text NOT NULL,
  iss text NOT NULL,
  -- NULL while the practitioner is linked to no clinician account: the session can show who it is and nothing else.
  user_id bigint REFERENCES users (id),
  access_token_sealed bytea NOT NULL,
  scope text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('ehr', 'standalone')),
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  -- The access token's expiry: the session ends with the launch.
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);

-- A decision made through a SMART launch names the EHR's Practitioner and the launch's `iss`.
ALTER TABLE campaign_decisions ADD COLUMN IF NOT EXISTS practitioner text;
ALTER TABLE campaign_decisions ADD COLUMN IF NOT EXISTS ehr_iss text;
