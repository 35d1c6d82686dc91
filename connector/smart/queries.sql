-- Named queries of the SMART app launch: EHR registrations, practitioner links, launches and sessions.

-- name: insertEhr
INSERT INTO smart_ehrs (name, iss, client_id, redirect_uri, frame_origins, auto_provision, created_by, created_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
ON CONFLICT (iss) DO NOTHING
RETURNING *;

-- name: updateEhr
UPDATE smart_ehrs SET name = $2, client_id = $3, redirect_uri = $4, frame_origins = $5::jsonb, auto_provision = $6, disabled_at = NULL
WHERE iss = $1
RETURNING *;

-- name: updateEhrById
UPDATE smart_ehrs SET name = $2, client_id = $3, redirect_uri = $4, frame_origins = $5::jsonb, auto_provision = $6, disabled_at = $7
WHERE id = $1::bigint
RETURNING *;

-- name: revokeEhrSessions
UPDATE smart_sessions SET revoked_at = $2 WHERE ehr_id = $1::bigint AND revoked_at IS NULL;

-- name: ehrByIss
SELECT * FROM smart_ehrs WHERE iss = $1 AND disabled_at IS NULL;

-- name: ehrById
SELECT * FROM smart_ehrs WHERE id = $1::bigint;

-- name: listEhrs
SELECT * FROM smart_ehrs ORDER BY id;

-- name: frameOrigins
SELECT frame_origins FROM smart_ehrs WHERE disabled_at IS NULL;

-- name: linkPractitioner
INSERT INTO smart_practitioners (ehr_id, practitioner, user_id, provisioned, created_by, created_at)
VALUES ($1::bigint, $2, $3::bigint, $4, $5, $6)
ON CONFLICT (ehr_id, practitioner) DO UPDATE SET user_id = EXCLUDED.user_id, provisioned = EXCLUDED.provisioned,
  created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at
RETURNING *;

-- name: unlinkPractitioner
DELETE FROM smart_practitioners WHERE ehr_id = $1::bigint AND practitioner = $2 RETURNING user_id::text AS user_id;

-- name: linkedUser
SELECT user_id::text AS user_id FROM smart_practitioners WHERE ehr_id = $1::bigint AND practitioner = $2;

-- name: listLinks
SELECT p.ehr_id::text AS ehr_id, p.practitioner, p.user_id::text AS user_id, u.username, u.role, p.provisioned, p.created_by, p.created_at
FROM smart_practitioners p JOIN users u ON u.id = p.user_id
WHERE p.ehr_id = $1::bigint ORDER BY p.practitioner;

-- name: insertLaunch
INSERT INTO smart_launches (state_hash, ehr_id, binding_hash, nonce, verifier_sealed, token_endpoint, kind, created_at, expires_at)
VALUES ($1, $2::bigint, $3, $4, $5, $6, $7, $8, $9);

-- name: consumeLaunch
UPDATE smart_launches SET consumed_at = $2
WHERE state_hash = $1 AND consumed_at IS NULL
RETURNING state_hash, ehr_id::text AS ehr_id, binding_hash, nonce, verifier_sealed, token_endpoint, kind, expires_at;

-- name: pruneLaunches
DELETE FROM smart_launches WHERE expires_at < $1;

-- name: insertSession
INSERT INTO smart_sessions (token_hash, ehr_id, practitioner, iss, user_id, access_token_sealed, scope, kind, created_at, last_seen_at, expires_at)
VALUES ($1, $2::bigint, $3, $4, $5::bigint, $6, $7, $8, $9, $9, $10)
RETURNING id::text AS id;

-- name: sessionByToken
SELECT s.id::text AS id, s.ehr_id::text AS ehr_id, s.practitioner, s.iss, s.user_id::text AS user_id, s.kind, s.scope,
       s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, e.name AS ehr_name, e.disabled_at AS ehr_disabled_at,
       u.username, u.role, u.disabled_at AS user_disabled_at
FROM smart_sessions s
JOIN smart_ehrs e ON e.id = s.ehr_id
LEFT JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1;

-- name: touchSession
UPDATE smart_sessions SET last_seen_at = $2 WHERE id = $1::bigint AND last_seen_at < $2 AND revoked_at IS NULL;

-- name: revokeSession
UPDATE smart_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL RETURNING id::text AS id;

-- name: revokePractitionerSessions
UPDATE smart_sessions SET revoked_at = $3 WHERE ehr_id = $1::bigint AND practitioner = $2 AND revoked_at IS NULL;
