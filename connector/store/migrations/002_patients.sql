-- Patients (sealed facts with blind-index look-ups), the FHIR quarantine (no PHI) and the sync state per endpoint.
CREATE TABLE IF NOT EXISTS patients (
  -- The internal patient id every other module uses.
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The FHIR endpoint name the patient came from (configuration, not PHI).
  source text NOT NULL,
  -- HMAC blind index of the patient's logical id at the source.
  source_patient_bidx bytea NOT NULL,
  email_bidx bytea,
  mrn_bidx bytea,
  crm_bidx bytea,
  -- The PatientFacts JSON, sealed with AAD patients|facts|<id>.
  facts bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source, source_patient_bidx)
);
CREATE INDEX IF NOT EXISTS patients_email_bidx ON patients (email_bidx) WHERE email_bidx IS NOT NULL;
CREATE INDEX IF NOT EXISTS patients_mrn_bidx ON patients (mrn_bidx) WHERE mrn_bidx IS NOT NULL;
CREATE INDEX IF NOT EXISTS patients_crm_bidx ON patients (crm_bidx) WHERE crm_bidx IS NOT NULL;

INSERT INTO sealed_columns (table_name, column_name, id_column) VALUES ('patients', 'facts', 'id')
  ON CONFLICT DO NOTHING;

-- Resources or NDJSON lines that failed validation. Holds no resource values: the resource id is blinded.
CREATE TABLE IF NOT EXISTS quarantine (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint text NOT NULL,
  resource_type text,
  -- HMAC blind index of resourceType/id (so a re-sync of the same bad resource can be matched, never read back).
  resource_bidx bytea,
  path text NOT NULL,
  reason text NOT NULL,
  file text,
  line int,
  at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_endpoint ON quarantine (endpoint, at);

-- The last complete sync per endpoint (transactionTime of the last $export, or the start of the last search sync).
CREATE TABLE IF NOT EXISTS sync_state (
  endpoint text PRIMARY KEY,
  since text,
  mode text CHECK (mode IN ('search', 'bulk')),
  updated_at timestamptz NOT NULL
);
