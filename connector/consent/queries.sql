-- Named queries of the authorization registry (loaded by registry.ts). Ordering names table columns: ids are selected as text.

-- name: nextIds
SELECT nextval(pg_get_serial_sequence('authorization_events', 'id'))::text AS id FROM generate_series(1, $1::int);

-- name: insertEvents
INSERT INTO authorization_events (id, patient_id, purpose, channel, status, granted_at, expires_at, recorded_at, source,
                                  source_ref, text_version, evidence_hash, evidence_sealed, reason_sealed, recorded_by)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                     $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::bytea[], $14::bytea[],
                     $15::text[]);

-- name: gateOne
-- The newest row of the purpose and of the channel-wide '*', read from the (patient, channel, purpose, id) index.
SELECT DISTINCT ON (e.purpose) e.id::text AS id, e.purpose, e.status, e.granted_at, e.expires_at, e.text_version
FROM authorization_events e
WHERE e.patient_id = $1::bigint AND e.channel = $2 AND e.purpose IN ($3, '*')
ORDER BY e.purpose, e.id DESC;

-- name: gateMany
SELECT DISTINCT ON (e.patient_id, e.purpose)
       e.patient_id::text AS patient_id, e.id::text AS id, e.purpose, e.status, e.granted_at, e.expires_at, e.text_version
FROM authorization_events e
WHERE e.patient_id = ANY($1::bigint[]) AND e.channel = $2 AND e.purpose IN ($3, '*')
ORDER BY e.patient_id, e.purpose, e.id DESC;

-- name: currentForPatients
SELECT DISTINCT ON (e.patient_id, e.channel, e.purpose)
       id::text AS id, patient_id::text AS patient_id, purpose, channel, status, granted_at, expires_at, recorded_at,
       source, source_ref, text_version, evidence_hash, evidence_sealed, reason_sealed, recorded_by
FROM authorization_events e WHERE e.patient_id = ANY($1::bigint[])
ORDER BY e.patient_id, e.channel, e.purpose, e.id DESC;

-- name: history
SELECT id::text AS id, patient_id::text AS patient_id, purpose, channel, status, granted_at, expires_at, recorded_at,
       source, source_ref, text_version, evidence_hash, evidence_sealed, reason_sealed, recorded_by
FROM authorization_events e WHERE e.patient_id = $1::bigint ORDER BY e.id;

-- name: historyPage
SELECT id::text AS id, patient_id::text AS patient_id, purpose, channel, status, granted_at, expires_at, recorded_at,
       source, source_ref, text_version, evidence_hash, evidence_sealed, reason_sealed, recorded_by
FROM authorization_events e WHERE e.id > $1::bigint ORDER BY e.id LIMIT $2;

-- name: patientsPage
SELECT DISTINCT patient_id FROM authorization_events WHERE patient_id > $1::bigint ORDER BY patient_id LIMIT $2;

-- name: importedVersions
SELECT source_ref, patient_id::text AS patient_id, purpose, channel, evidence_hash
FROM authorization_events e WHERE e.source = 'fhir-consent' AND e.source_ref = ANY($1::text[]) ORDER BY e.id;

-- name: sealedById
SELECT evidence_sealed, reason_sealed FROM authorization_events WHERE id = $1::bigint;

-- name: historyAfter
-- What was appended after an id, in id order: the segment index follows the changes other processes record.
SELECT id::text AS id, patient_id::text AS patient_id FROM authorization_events WHERE id > $1::bigint ORDER BY id LIMIT $2;

-- name: historyWithIds
SELECT id::text AS id, patient_id::text AS patient_id FROM authorization_events WHERE id = ANY($1::bigint[]);

-- name: latestHistoryIds
SELECT id::text AS id FROM authorization_events ORDER BY id DESC LIMIT $1;
