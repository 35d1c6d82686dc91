-- The audit log: append-only, hash-chained rows (hash = SHA-256(prev_hash || canonical row)) and one chain head.
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  role text NOT NULL,
  action text NOT NULL,
  purpose text,
  -- keyed HMAC blind id of the patient (hex); never the patient id or any PHI.
  patient_blind text,
  -- what was touched, as a PHI-free reference ('campaign/12', 'endpoint/epic').
  entity text,
  outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL,
  -- keyed HMAC of hash: a row re-hashed by someone without the key does not verify.
  mac bytea NOT NULL
);
CREATE INDEX audit_log_patient ON audit_log (patient_blind, seq) WHERE patient_blind IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log (at);

-- The anchor: the last seq and hash, updated in the appending transaction. Locking it serialises appenders,
-- and comparing it with the last row makes a truncated tail detectable.
CREATE TABLE audit_chain_head (
  id int PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  hash bytea NOT NULL,
  mac bytea
);
INSERT INTO audit_chain_head (id, seq, hash, mac) VALUES (1, 0, decode(repeat('00', 32), 'hex'), NULL);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'P0001';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
