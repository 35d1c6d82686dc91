-- How the API runs each FHIR endpoint: bulk export or search, and the state of the last sync it started (no PHI).
CREATE TABLE IF NOT EXISTS endpoint_runs (
  endpoint text PRIMARY KEY,
  use_bulk_export boolean NOT NULL DEFAULT false,
  last_sync_id text,
  last_sync_status text NOT NULL DEFAULT 'never' CHECK (last_sync_status IN ('never', 'running', 'ok', 'failed')),
  last_sync_at timestamptz,
  -- The error code from the registry when the last sync failed.
  last_sync_error text
);
