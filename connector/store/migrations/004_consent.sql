-- The HIPAA authorization registry: append-only history of grants, revocations, expiries and channel opt-outs.
-- patient_id is the store's internal patient id, kept without a foreign key so this table migrates on its own.
-- purpose '*' is a channel-wide record: 'revoked' is a channel opt-out (stops every purpose), 'active' lifts it.
CREATE TABLE authorization_events (
  id bigserial PRIMARY KEY,
  patient_id bigint NOT NULL,
  purpose text NOT NULL,
  channel text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
  granted_at timestamptz,
  expires_at timestamptz,
  recorded_at timestamptz NOT NULL,
  source text NOT NULL CHECK (source IN ('fhir-consent', 'signed-form', 'crm', 'unsubscribe-link', 'admin')),
  source_ref text,
  text_version text,
  evidence_hash bytea,
  -- PHI-bearing text (the signed form, the FHIR Consent, a free-text reason) is sealed by the field cipher.
  evidence_sealed bytea,
  reason_sealed bytea,
  recorded_by text NOT NULL,
  CHECK (purpose <> '*' OR status <> 'expired')
);

-- The gate reads the newest row of one (patient, channel, purpose): one index probe each.
CREATE INDEX authorization_events_current ON authorization_events (patient_id, channel, purpose, id DESC);
-- Sync re-imports the same FHIR Consent often: this finds the versions already recorded.
CREATE INDEX authorization_events_source_ref ON authorization_events (source_ref) WHERE source_ref IS NOT NULL;

-- History is append-only: no deletes, and updates may only reseal the sealed columns (key rotation).
CREATE FUNCTION authorization_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'authorization_events is append-only: DELETE refused' USING ERRCODE = 'P0001';
  END IF;
  IF (NEW.id, NEW.patient_id, NEW.purpose, NEW.channel, NEW.status, NEW.granted_at, NEW.expires_at, NEW.recorded_at,
      NEW.source, NEW.source_ref, NEW.text_version, NEW.evidence_hash, NEW.recorded_by)
     IS DISTINCT FROM
     (OLD.id, OLD.patient_id, OLD.purpose, OLD.channel, OLD.status, OLD.granted_at, OLD.expires_at, OLD.recorded_at,
      OLD.source, OLD.source_ref, OLD.text_version, OLD.evidence_hash, OLD.recorded_by) THEN
    RAISE EXCEPTION 'authorization_events is append-only: only sealed columns may be resealed' USING ERRCODE = 'P0001';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER authorization_events_append_only BEFORE UPDATE OR DELETE ON authorization_events
  FOR EACH ROW EXECUTE FUNCTION authorization_events_refuse_change();

-- The keyring's reseal job walks these after a key rotation (the trigger above lets it rewrite exactly these columns).
INSERT INTO sealed_columns (table_name, column_name, id_column) VALUES
  ('authorization_events', 'evidence_sealed', 'id'),
  ('authorization_events', 'reason_sealed', 'id')
  ON CONFLICT DO NOTHING;
