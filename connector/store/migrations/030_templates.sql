-- Templates: named email content, versioned (every edit a new version) with a SHA-256 content hash and its PHI analysis.
CREATE TABLE IF NOT EXISTS templates (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- A marketer's label; templates hold merge tags, never patient data.
  name text NOT NULL UNIQUE,
  description text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS template_versions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  template_id bigint NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
  version int NOT NULL CHECK (version > 0),
  subject text NOT NULL,
  preheader text NOT NULL,
  html text NOT NULL,
  text_body text NOT NULL,
  -- 'pcp', a literal display name, or NULL for the sender's name.
  from_name text,
  -- SHA-256 (hex) over the fields above: an approval names exactly the content it approved.
  content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  -- The analysis when the version was saved: merge tag names, the PHI class, the delivery modes it allows.
  merge_tags jsonb NOT NULL,
  phi_class text NOT NULL CHECK (phi_class IN ('none', 'identity', 'clinical')),
  delivery_modes jsonb NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (template_id, version)
);
