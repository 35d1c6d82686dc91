-- Named queries of the audit log (loaded by audit-log.ts). Ordering names table columns: seq is selected as text.

-- name: lockHead
SELECT seq::text AS seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE;

-- name: readHead
SELECT seq::text AS seq, hash, mac FROM audit_chain_head WHERE id = 1;

-- name: setHead
UPDATE audit_chain_head SET seq = $1::bigint, hash = $2, mac = $3 WHERE id = 1;

-- name: insertRows
INSERT INTO audit_log (seq, at, actor, role, action, purpose, patient_blind, entity, outcome, prev_hash, hash, mac)
SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::bytea[], $11::bytea[], $12::bytea[]);

-- name: page
SELECT seq::text AS seq, at, actor, role, action, purpose, patient_blind, entity, outcome, prev_hash, hash, mac
FROM audit_log WHERE audit_log.seq > $1::bigint ORDER BY audit_log.seq LIMIT $2;

-- name: search
SELECT seq::text AS seq, at, actor, role, action, purpose, patient_blind, entity, outcome, prev_hash, hash, mac
FROM audit_log
WHERE audit_log.seq > $1::bigint
  AND ($2::text IS NULL OR patient_blind = $2)
  AND ($3::timestamptz IS NULL OR at >= $3)
  AND ($4::timestamptz IS NULL OR at < $4)
  AND ($5::text IS NULL OR action LIKE $5)
ORDER BY audit_log.seq LIMIT $6;
