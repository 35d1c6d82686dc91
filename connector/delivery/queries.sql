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
)
SELECT * FROM claimed ORDER BY id;

-- name: renewLeases
-- Extends the lease of messages this worker still holds (a long send must not be claimed again); updated_at stays the claim time.
-- Rows locked by a finish in progress are skipped (they need no renewal), in id order, so renewal never waits on or deadlocks with a finish.
UPDATE delivery_outbox SET lease_until = $3::timestamptz
WHERE id IN (
  SELECT id FROM delivery_outbox WHERE id = ANY($2::bigint[]) AND lease_owner = $1::text AND state = 'sending' ORDER BY id FOR UPDATE SKIP LOCKED
)
RETURNING id;

-- name: finishMany
UPDATE delivery_outbox o
SET state = u.state, next_attempt_at = COALESCE(u.next_at, o.next_attempt_at), lease_owner = NULL, lease_until = NULL,
    updated_at = $2::timestamptz, consent_version = COALESCE(u.consent_version, o.consent_version),
    delivered_as = COALESCE(u.delivered_as, o.delivered_as), recipient_domain = COALESCE(u.domain, o.recipient_domain),
    tls_evidence = COALESCE(u.evidence::jsonb, o.tls_evidence), smtp_response = COALESCE(u.smtp, o.smtp_response),
    last_error = u.last_error, cancel_reason = u.cancel_reason, attempts = o.attempts - u.refund,
    finished_at = CASE WHEN u.state IN ('delivered', 'notice_sent', 'failed', 'cancelled') THEN $2::timestamptz ELSE NULL END
FROM unnest($3::bigint[], $4::int[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
            $12::text[], $13::text[], $14::int[])
  AS u(id, attempt, state, next_at, consent_version, delivered_as, domain, evidence, smtp, last_error, cancel_reason, refund)
-- `= ANY` lets the planner use the primary key even without statistics (PGlite never ANALYZEs on its own).
WHERE o.id = ANY($3::bigint[]) AND o.id = u.id AND o.lease_owner = $1::text AND o.attempts = u.attempt AND o.state = 'sending'
RETURNING o.id;

-- name: finishAttempts
INSERT INTO delivery_attempts (outbox_id, attempt, worker, started_at, finished_at, outcome, smtp_response)
SELECT u.id, u.attempt, $1::text, u.started_at, $2::timestamptz, u.outcome, u.smtp
FROM unnest($3::bigint[], $4::int[], $5::timestamptz[], $6::text[], $7::text[]) AS u(id, attempt, started_at, outcome, smtp)
ON CONFLICT (outbox_id, attempt) DO NOTHING;

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

-- name: byMessageId
SELECT * FROM delivery_outbox WHERE message_id = $1;

-- name: requeueSoftBounce
UPDATE delivery_outbox
SET state = 'queued', next_attempt_at = $2::timestamptz, last_error = $3::text, updated_at = $4::timestamptz, finished_at = NULL
WHERE message_id = $1::text AND state IN ('delivered', 'notice_sent') AND attempts < max_attempts
RETURNING id;

-- name: insertSuppression
INSERT INTO delivery_suppressions (address_index, patient_id, reason, detail, outbox_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (address_index) WHERE address_index IS NOT NULL DO NOTHING;

-- name: findSuppression
SELECT id, reason, detail FROM delivery_suppressions
WHERE address_index = $1 OR (patient_id = $2::text AND reason = 'complaint')
ORDER BY id LIMIT 1;

-- name: findSuppressions
SELECT id, address_index, patient_id, reason, detail FROM delivery_suppressions
WHERE address_index = ANY($1::bytea[]) OR (patient_id = ANY($2::text[]) AND reason = 'complaint')
ORDER BY id;

-- name: insertFeedback
INSERT INTO delivery_feedback (kind, outbox_id, status, received_at) VALUES ($1, $2, $3, $4);

-- name: insertTrackingTokens
INSERT INTO tracking_tokens (token_hash, kind, outbox_id, campaign_id, target_sealed, created_at)
SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::timestamptz[]);

-- name: trackingToken
SELECT * FROM tracking_tokens WHERE token_hash = $1;

-- name: insertTrackingEvent
INSERT INTO tracking_events (outbox_id, campaign_id, kind, agent, machine, at) VALUES ($1, $2, $3, $4, $5, $6);

-- name: trackingStats
SELECT kind, machine, count(*)::int AS events, count(DISTINCT outbox_id)::int AS messages
FROM tracking_events WHERE campaign_id = $1 GROUP BY kind, machine;

-- name: insertWebhook
INSERT INTO webhook_deliveries (event_id, endpoint, event_type, payload, next_attempt_at, created_at)
SELECT $1, e, $2, $3::jsonb, $4, $4 FROM unnest($5::text[]) AS e
ON CONFLICT (event_id, endpoint) DO NOTHING;

-- name: insertWebhooks
-- Many events to every endpoint in one statement (the dispatcher's outcomes of one flush).
INSERT INTO webhook_deliveries (event_id, endpoint, event_type, payload, next_attempt_at, created_at)
SELECT ev.id, e, ev.type, ev.payload::jsonb, $4::timestamptz, $4::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[]) AS ev(id, type, payload) CROSS JOIN unnest($5::text[]) AS e
ON CONFLICT (event_id, endpoint) DO NOTHING;

-- name: claimWebhooks
-- Claimed rows are pushed past a lease so a second sender skips them while the HTTP call runs outside any transaction.
UPDATE webhook_deliveries SET next_attempt_at = $3
WHERE id IN (
  SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: finishWebhook
UPDATE webhook_deliveries
SET state = $2, attempts = attempts + 1, last_status = $3, next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5
WHERE id = $1;

-- name: replayWebhooks
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, attempts = 0
WHERE (id = ANY($2::bigint[]) OR ($3::timestamptz IS NOT NULL AND created_at >= $3)) AND state <> 'pending'
RETURNING id;

-- name: webhookCursor
-- The highest source row already turned into a webhook event ('tracking:<id>', 'feedback:<id>').
SELECT max(split_part(event_id, ':', 2)::bigint) AS seq FROM webhook_deliveries WHERE event_id LIKE $1::text || ':%';

-- name: maxTrackingEvent
SELECT max(id) AS seq FROM tracking_events;

-- name: maxFeedback
SELECT max(id) AS seq FROM delivery_feedback;

-- name: trackingEventsAfter
SELECT id, outbox_id, campaign_id, kind, agent, machine, at FROM tracking_events WHERE id > $1 ORDER BY id LIMIT $2;

-- name: feedbackAfter
SELECT f.id, f.kind, f.outbox_id, f.status, f.received_at, o.campaign_id
FROM delivery_feedback f LEFT JOIN delivery_outbox o ON o.id = f.outbox_id
WHERE f.id > $1 ORDER BY f.id LIMIT $2;

-- name: lastSentTo
SELECT id, campaign_id FROM delivery_outbox
WHERE patient_id = $1 AND channel = $2 AND ($3::text IS NULL OR purpose = $3) AND state IN ('delivered', 'notice_sent')
ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1;
