-- Named queries of journeys (loaded by connector/journeys/*.ts); the same SQL on PGlite and PostgreSQL.

-- name: insertJourney
INSERT INTO journeys (name, purpose, delivery_mode, trigger_def, steps, created_by, created_at, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $7)
RETURNING *;

-- name: byId
SELECT * FROM journeys WHERE id = $1;

-- name: lockById
SELECT * FROM journeys WHERE id = $1 FOR UPDATE;

-- name: list
SELECT * FROM journeys ORDER BY id;

-- name: running
SELECT * FROM journeys WHERE status IN ('active', 'paused') ORDER BY id;

-- name: updateDefinition
UPDATE journeys
SET name = $2, purpose = $3, delivery_mode = $4, trigger_def = $5::jsonb, steps = $6::jsonb, revision = revision + 1,
    status = 'draft', approval_hash = NULL, approved_by = NULL, approved_at = NULL, updated_at = $7
WHERE id = $1
RETURNING *;

-- name: setApproved
UPDATE journeys SET status = 'active', approval_hash = $2, approved_by = $3, approved_at = $4, updated_at = $4
WHERE id = $1 AND revision = $5
RETURNING *;

-- name: setStatus
UPDATE journeys SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *;

-- name: existingOccurrences
SELECT patient_id, occurrence FROM journey_enrollments
WHERE journey_id = $1 AND revision = $2 AND patient_id = ANY($3::bigint[]);

-- name: allocateEnrollmentIds
SELECT nextval(pg_get_serial_sequence('journey_enrollments', 'id')) AS id FROM generate_series(1, $1);

-- name: insertEnrollments
INSERT INTO journey_enrollments (id, journey_id, revision, patient_id, occurrence, state, due_at, context_sealed, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT u.id, $1::bigint, $2::int, u.patient_id, u.occurrence, 'waiting', u.due_at, u.context, $3::timestamptz, $3::timestamptz
FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::timestamptz[], $8::bytea[]) AS u(id, patient_id, occurrence, due_at, context)
ON CONFLICT (journey_id, revision, patient_id, occurrence) DO NOTHING
RETURNING id;

-- name: waitingOfPatients
SELECT e.*, j.purpose FROM journey_enrollments e JOIN journeys j ON j.id = e.journey_id
WHERE e.state = 'waiting' AND e.patient_id = ANY($1::bigint[]);

-- name: claimDue
-- Due rows of active journeys, oldest first, pushed past a lease: a second scheduler skips them, and a run that dies
-- midway is taken again when the lease ends (every step is idempotent).
UPDATE journey_enrollments e SET due_at = $3, updated_at = $1
FROM (
  SELECT w.id, w.due_at AS was_due FROM journey_enrollments w JOIN journeys j ON j.id = w.journey_id AND j.revision = w.revision
  WHERE w.state = 'waiting' AND w.due_at <= $1 AND j.status = 'active'
  ORDER BY w.due_at, w.id
  LIMIT $2
  FOR UPDATE OF w SKIP LOCKED
) d
WHERE e.id = d.id
RETURNING e.*, d.was_due;

-- name: exitEnrollments
UPDATE journey_enrollments SET state = 'exited', exit_reason = $2, updated_at = $3
WHERE id = ANY($1::bigint[]) AND state = 'waiting'
RETURNING id, journey_id, patient_id;

-- name: exitStaleRevisions
UPDATE journey_enrollments SET state = 'exited', exit_reason = 'journey edited', updated_at = $3
WHERE journey_id = $1 AND revision < $2 AND state = 'waiting';

-- name: lastSendKey
SELECT idempotency_key FROM journey_step_runs
WHERE enrollment_id = $1 AND outcome = 'queued' AND idempotency_key IS NOT NULL
ORDER BY step_index DESC LIMIT 1;

-- name: trackedKinds
SELECT DISTINCT t.kind FROM delivery_outbox o JOIN tracking_events t ON t.outbox_id = o.id
WHERE o.idempotency_key = $1 AND t.machine = false;

-- name: stepCounts
SELECT step_index, step_name, outcome, count(*)::int AS n FROM journey_step_runs WHERE journey_id = $1
GROUP BY step_index, step_name, outcome ORDER BY step_index, outcome;

-- name: enrollmentCounts
SELECT state, COALESCE(exit_reason, '') AS reason, count(*)::int AS n FROM journey_enrollments WHERE journey_id = $1
GROUP BY state, exit_reason ORDER BY state, reason;

-- name: waitingAt
SELECT step_index, count(*)::int AS n FROM journey_enrollments WHERE journey_id = $1 AND state = 'waiting'
GROUP BY step_index ORDER BY step_index;

-- name: enterSegment
INSERT INTO journey_segment_members (journey_id, patient_id) SELECT $1, unnest($2::bigint[])
ON CONFLICT (journey_id, patient_id) DO UPDATE SET present = true, entries = journey_segment_members.entries + 1
WHERE NOT journey_segment_members.present
RETURNING patient_id, entries;

-- name: leaveSegment
UPDATE journey_segment_members SET present = false WHERE journey_id = $1 AND patient_id = ANY($2::bigint[]) AND present;

-- name: watermark
SELECT patients_updated_at, patient_id FROM journey_watermark WHERE id = 1;

-- name: setWatermark
INSERT INTO journey_watermark (id, patients_updated_at, patient_id) VALUES (1, $1, $2)
ON CONFLICT (id) DO UPDATE SET patients_updated_at = EXCLUDED.patients_updated_at, patient_id = EXCLUDED.patient_id
WHERE (journey_watermark.patients_updated_at, journey_watermark.patient_id) < (EXCLUDED.patients_updated_at, EXCLUDED.patient_id);

-- name: setBaseline
UPDATE journeys SET segment_baseline_revision = $2 WHERE id = $1;

-- name: resetSegmentMembers
DELETE FROM journey_segment_members WHERE journey_id = $1;

-- name: seedSegmentMembers
INSERT INTO journey_segment_members (journey_id, patient_id) SELECT $1, unnest($2::bigint[])
ON CONFLICT (journey_id, patient_id) DO UPDATE SET present = true;

-- name: patientsUpdatedSince
SELECT id, updated_at FROM patients WHERE (updated_at, id) > ($1::timestamptz, $2::bigint) ORDER BY updated_at, id LIMIT $3;

-- name: latestSegmentVersion
SELECT id FROM segment_versions WHERE segment_id = $1 ORDER BY version DESC LIMIT 1;

-- name: latestTemplateVersion
SELECT id FROM template_versions WHERE template_id = $1 ORDER BY version DESC LIMIT 1;

-- name: voidApproval
UPDATE journeys SET status = 'draft', approval_hash = NULL, approved_by = NULL, approved_at = NULL, updated_at = $3
WHERE id = $1 AND approval_hash = $2
RETURNING *;

-- name: stepRunsOfMany
SELECT enrollment_id, step_index, outcome, at FROM journey_step_runs WHERE enrollment_id = ANY($1::bigint[]);

-- name: recordSteps
INSERT INTO journey_step_runs (enrollment_id, journey_id, step_index, step_name, outcome, idempotency_key, at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
ON CONFLICT (enrollment_id, step_index) DO NOTHING;

-- name: advanceMany
UPDATE journey_enrollments e SET step_index = u.step_index, due_at = u.due_at, updated_at = $4
FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS u(id, step_index, due_at)
WHERE e.id = u.id AND e.state = 'waiting';

-- name: finishDone
UPDATE journey_enrollments SET state = 'done', updated_at = $2 WHERE id = ANY($1::bigint[]) AND state = 'waiting';
