-- Named queries of the escrow portal (connector/portal/escrow-portal.ts).

-- name: nextId
SELECT nextval(pg_get_serial_sequence('escrow_messages', 'id')) AS id;

-- name: insert
INSERT INTO escrow_messages (id, token_hash, outbox_id, patient_id, purpose, address_sealed, content_sealed, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: byToken
SELECT * FROM escrow_messages WHERE token_hash = $1;

-- name: setCode
UPDATE escrow_messages SET code_hash = $2, code_expires_at = $3, codes_sent = codes_sent + 1 WHERE id = $1;

-- name: recordFailure
-- A lockout that has run out starts a fresh count; reaching the limit locks and voids the current code.
WITH counted AS (
  SELECT id, CASE WHEN locked_until IS NOT NULL AND locked_until <= $4::timestamptz THEN 1 ELSE failed_attempts + 1 END AS n
  FROM escrow_messages WHERE id = $1
)
UPDATE escrow_messages e
SET failed_attempts = c.n,
    locked_until = CASE WHEN c.n >= $2::int THEN $3::timestamptz ELSE NULL END,
    code_hash = CASE WHEN c.n >= $2::int THEN NULL ELSE e.code_hash END
FROM counted c WHERE e.id = c.id
RETURNING e.failed_attempts, e.locked_until;

-- name: openSession
UPDATE escrow_messages
SET failed_attempts = 0, locked_until = NULL, code_hash = NULL, code_expires_at = NULL, session_hash = $2, session_expires_at = $3
WHERE id = $1;

-- name: recordView
UPDATE escrow_messages SET views = views + 1, first_viewed_at = COALESCE(first_viewed_at, $2) WHERE id = $1;
