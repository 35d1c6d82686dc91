-- Journeys: automated, clinician-approved step sequences started by FHIR changes; enrollments (one per patient and trigger occurrence) with an indexed due time, and the step log that makes each step happen once.
CREATE TABLE IF NOT EXISTS journeys (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- A marketer's label (criteria, never patient data).
  name text NOT NULL,
  status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
  purpose text NOT NULL,
  delivery_mode text NOT NULL CHECK (delivery_mode IN ('tls-required', 'tls-or-escrow', 'escrow')),
  -- The trigger and the steps (codes, hours, template version ids, step names: configuration, no patient data).
  trigger_def jsonb NOT NULL,
  steps jsonb NOT NULL,
  -- The journey version: bumped by every edit; enrollments and outbox keys carry it.
  revision integer NOT NULL DEFAULT 1,
  -- SHA-256 (hex) over trigger, steps (template content hashes, merge tags), delivery mode and purpose while an approval stands.
  approval_hash text CHECK (approval_hash ~ '^[0-9a-f]{64}$'),
  approved_by text,
  approved_at timestamptz,
  -- The revision whose segment members were taken as the baseline (segment entry: members before approval do not enter).
  segment_baseline_revision integer,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS journeys_status ON journeys (status, id);

-- One patient in one journey version for one occurrence of the trigger (an appointment, a refill, a screening cycle).
CREATE TABLE IF NOT EXISTS journey_enrollments (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  journey_id bigint NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
  revision integer NOT NULL,
  patient_id bigint NOT NULL,
  -- Which occurrence: a FHIR resource id and a keyed hash of its dates (ids are not PHI; dates are blinded).
  occurrence text NOT NULL,
  state text NOT NULL CHECK (state IN ('waiting', 'done', 'exited')),
  -- The next step to run and when: the scheduler reads only waiting rows that are due.
  step_index integer NOT NULL DEFAULT 0,
  due_at timestamptz NOT NULL,
  exit_reason text,
  -- The anchor (appointment start, refill date...) and the last message id, sealed: a date of care is PHI.
  context_sealed bytea NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  UNIQUE (journey_id, revision, patient_id, occurrence)
);
CREATE INDEX IF NOT EXISTS journey_enrollments_due ON journey_enrollments (due_at, id) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS journey_enrollments_patient ON journey_enrollments (patient_id) WHERE state = 'waiting';

INSERT INTO sealed_columns (table_name, column_name, id_column) VALUES ('journey_enrollments', 'context_sealed', 'id')
  ON CONFLICT DO NOTHING;

-- Each step an enrollment ran, once: what it did (queued, skipped, branched, waited, exited) and the outbox key of a send.
CREATE TABLE IF NOT EXISTS journey_step_runs (
  enrollment_id bigint NOT NULL REFERENCES journey_enrollments (id) ON DELETE CASCADE,
  journey_id bigint NOT NULL,
  step_index integer NOT NULL,
  step_name text NOT NULL,
  outcome text NOT NULL,
  idempotency_key text,
  at timestamptz NOT NULL,
  PRIMARY KEY (enrollment_id, step_index)
);
CREATE INDEX IF NOT EXISTS journey_step_runs_journey ON journey_step_runs (journey_id, step_index);

-- Who matched a segment-entry journey's segment at the last look: only a patient not in it before enters.
CREATE TABLE IF NOT EXISTS journey_segment_members (
  journey_id bigint NOT NULL REFERENCES journeys (id) ON DELETE CASCADE,
  patient_id bigint NOT NULL,
  entries integer NOT NULL DEFAULT 1,
  present boolean NOT NULL DEFAULT true,
  PRIMARY KEY (journey_id, patient_id)
);

-- Where the scheduler's catch-up left off: patients written since (by another process, or before a crash) are evaluated again.
CREATE TABLE IF NOT EXISTS journey_watermark (
  id integer PRIMARY KEY CHECK (id = 1),
  patients_updated_at timestamptz NOT NULL,
  patient_id bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_updated_at ON patients (updated_at);
