-- The keyring: data keys wrapped by the master key (envelope encryption), the registry of sealed columns, and reseal jobs.
CREATE TABLE IF NOT EXISTS data_keys (
  -- 'seal' keys encrypt fields (rotated, versioned); the one 'blind-index' key (version 0) keys the HMAC look-ups.
  purpose text NOT NULL CHECK (purpose IN ('seal', 'blind-index')),
  version int NOT NULL CHECK (version >= 0),
  -- AES-256-GCM of the 32-byte data key under the master key (KMS); NULL once the version is retired (crypto-shredded).
  wrapped bytea,
  -- Which master key wrapped it: provider and a fingerprint (never the key).
  kek_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  PRIMARY KEY (purpose, version),
  CHECK ((wrapped IS NULL) = (retired_at IS NOT NULL))
);

-- Every column that holds sealed values: the reseal job walks these. Each module adds its own rows in its migrations.
CREATE TABLE IF NOT EXISTS sealed_columns (
  table_name text NOT NULL CHECK (table_name ~ '^[a-z_][a-z0-9_]*$'),
  column_name text NOT NULL CHECK (column_name ~ '^[a-z_][a-z0-9_]*$'),
  -- The primary-key column whose text form is the AAD row id.
  id_column text NOT NULL DEFAULT 'id' CHECK (id_column ~ '^[a-z_][a-z0-9_]*$'),
  PRIMARY KEY (table_name, column_name)
);

-- A reseal job moves every sealed value to the current seal key after a rotation; resumable through reseal_progress.
CREATE TABLE IF NOT EXISTS reseal_jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  target_version int NOT NULL,
  state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

CREATE TABLE IF NOT EXISTS reseal_progress (
  job_id bigint NOT NULL REFERENCES reseal_jobs (id) ON DELETE CASCADE,
  table_name text NOT NULL,
  column_name text NOT NULL,
  -- Last row id resealed (keyset cursor, text form); NULL before the first batch.
  cursor text,
  resealed bigint NOT NULL DEFAULT 0,
  done boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job_id, table_name, column_name)
);
