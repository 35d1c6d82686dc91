-- Sealed columns whose AAD row id is the hex of a bytea key (token hashes) rather than the key's text form.
ALTER TABLE sealed_columns ADD COLUMN IF NOT EXISTS row_id_format text NOT NULL DEFAULT 'text'
  CHECK (row_id_format IN ('text', 'hex'));
