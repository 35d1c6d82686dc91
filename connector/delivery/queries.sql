-- Named queries of the delivery outbox (loaded by connector/delivery/outbox.ts); the same SQL on PGlite and PostgreSQL.

-- name: enqueue
INSERT INTO delivery_outbox (idempotency_key, message_id, campaign_id, template_version, patient_id, purpose, channel,
  delivery_mode, max_attempts, next_attempt_at, created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[],
  $10::timestamptz[], $11::timestamptz[], $11::timestamptz[])
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id;

-- name: claim
WITH due AS (
  SELECT id FROM delivery_outbox
  WHERE (state IN ('queued', 'held') AND next_attempt_at <= $2)
     OR (state = 'sending' AND lease_until < $2)
  ORDER BY next_attempt_at, id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE delivery_outbox o
  SET state = 'sending', lease_owner = $1, lease_until = $4, attempts = o.attempts + 1, updated_at = $2,
      possible_duplicate = o.possible_duplicate OR o.state = 'sending'
  FROM due WHERE o.id = due.id
  RETURNING o.*
), logged AS (
  INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at)
  SELECT id, attempts, $1, $2 FROM claimed
  ON CONFLICT (outbox_id, attempt) DO NOTHING
)
SELECT * FROM claimed ORDER BY id;

-- name: finish
UPDATE delivery_outbox
SET state = $4::text, next_attempt_at = COALESCE($5::timestamptz, next_attempt_at), lease_owner = NULL, lease_until = NULL,
    updated_at = $6::timestamptz, consent_version = COALESCE($7::text, consent_version),
    delivered_as = COALESCE($8::text, delivered_as), recipient_domain = COALESCE($9::text, recipient_domain),
    tls_evidence = COALESCE($10::jsonb, tls_evidence), smtp_response = COALESCE($11::text, smtp_response),
    last_error = $12::text, cancel_reason = $13::text, attempts = attempts - $14::int,
    finished_at = CASE WHEN $4::text IN ('delivered', 'notice_sent', 'failed', 'cancelled') THEN $6::timestamptz ELSE NULL END
WHERE id = $1::bigint AND lease_owner = $2::text AND attempts = $3::int AND state = 'sending'
RETURNING id;

-- name: finishAttempt
UPDATE delivery_attempts SET finished_at = $3::timestamptz, outcome = $4::text, smtp_response = $5::text, tls_evidence = $6::jsonb
WHERE outbox_id = $1::bigint AND attempt = $2::int;

-- name: cancelQueued
UPDATE delivery_outbox
SET state = 'cancelled', cancel_reason = $5::text, updated_at = $6::timestamptz, finished_at = $6::timestamptz, lease_owner = NULL, lease_until = NULL
WHERE state IN ('queued', 'held')
  AND ($1::text IS NULL OR patient_id = $1)
  AND ($2::text IS NULL OR campaign_id = $2)
  AND ($3::text IS NULL OR purpose = $3)
  AND ($4::text IS NULL OR channel = $4)
RETURNING id;

-- name: byId
SELECT * FROM delivery_outbox WHERE id = $1;

-- name: byIdempotencyKey
SELECT * FROM delivery_outbox WHERE idempotency_key = $1;

-- name: attemptsOf
SELECT * FROM delivery_attempts WHERE outbox_id = $1 ORDER BY attempt;

-- name: campaignStates
SELECT state, count(*)::int AS n FROM delivery_outbox WHERE campaign_id = $1 GROUP BY state ORDER BY state;

-- name: nextDue
SELECT min(CASE WHEN state = 'sending' THEN lease_until ELSE next_attempt_at END) AS at
FROM delivery_outbox WHERE state IN ('queued', 'held', 'sending');
