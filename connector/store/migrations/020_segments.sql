-- Saved segments: versioned definitions (each with its SHA-256 hash) and membership snapshots taken at campaign approval.
CREATE TABLE IF NOT EXISTS segments (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- A marketer's label; segment names and definitions are criteria, never patient data.
  name text NOT NULL UNIQUE,
  description text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS segment_versions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_id bigint NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
  version int NOT NULL CHECK (version > 0),
  definition jsonb NOT NULL,
  -- SHA-256 (hex) of the canonical JSON of the parsed definition: an approval names exactly what it approved.
  definition_hash text NOT NULL CHECK (definition_hash ~ '^[0-9a-f]{64}$'),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (segment_id, version)
);

-- The audience of a campaign, frozen when it was approved: internal patient ids only.
CREATE TABLE IF NOT EXISTS segment_snapshots (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  segment_version_id bigint NOT NULL REFERENCES segment_versions (id),
  definition_hash text NOT NULL,
  -- The evaluation day the definition was taken at (ages, "within N days").
  as_of date NOT NULL,
  member_count int NOT NULL,
  -- A PHI-free reference to what asked for it (`campaign/12`).
  reason text,
  taken_by text NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS segment_snapshots_version ON segment_snapshots (segment_version_id);

CREATE TABLE IF NOT EXISTS segment_snapshot_members (
  snapshot_id bigint NOT NULL REFERENCES segment_snapshots (id) ON DELETE CASCADE,
  patient_id bigint NOT NULL,
  PRIMARY KEY (snapshot_id, patient_id)
);
