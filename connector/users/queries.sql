-- Named queries of users and sessions (loaded by users.ts and sessions.ts).

-- name: insertUser
INSERT INTO users (username, role, password_params, password_salt, password_hash, must_change_password, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (username) DO NOTHING
RETURNING id::text AS id;

-- name: insertFirstAdmin
INSERT INTO users (username, role, password_params, password_salt, password_hash, must_change_password, created_at)
SELECT $1, 'admin', $2, $3, $4, true, $5
WHERE NOT EXISTS (SELECT 1 FROM users)
ON CONFLICT (username) DO NOTHING
RETURNING id::text AS id;

-- name: userByName
SELECT id::text AS id, username, role, password_params, password_salt, password_hash, must_change_password,
       failed_logins, locked_until, disabled_at, created_at, last_login_at
FROM users WHERE username = $1;

-- name: userById
SELECT id::text AS id, username, role, password_params, password_salt, password_hash, must_change_password,
       failed_logins, locked_until, disabled_at, created_at, last_login_at
FROM users WHERE id = $1::bigint;

-- name: listUsers
SELECT id::text AS id, username, role, must_change_password, failed_logins, locked_until, disabled_at, created_at,
       last_login_at
FROM users ORDER BY username;

-- name: recordFailure
UPDATE users SET
  failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
  locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3::timestamptz ELSE locked_until END
WHERE id = $1::bigint
RETURNING locked_until;

-- name: recordSuccess
UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1::bigint;

-- name: setDisabled
UPDATE users SET disabled_at = $2 WHERE username = $1 RETURNING id::text AS id;

-- name: setPassword
UPDATE users SET password_params = $2, password_salt = $3, password_hash = $4, must_change_password = $5,
  failed_logins = 0, locked_until = NULL
WHERE id = $1::bigint;

-- name: insertSession
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, absolute_expires_at)
VALUES ($1, $2::bigint, $3, $3, $4)
RETURNING id::text AS id;

-- name: sessionByToken
SELECT s.id::text AS id, s.user_id::text AS user_id, s.created_at, s.last_seen_at, s.absolute_expires_at, s.revoked_at,
       u.username, u.role, u.disabled_at, u.must_change_password
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1;

-- name: touchSession
UPDATE sessions SET last_seen_at = $2 WHERE id = $1::bigint AND last_seen_at < $2 AND revoked_at IS NULL;

-- name: revokeSession
UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL RETURNING user_id::text AS user_id;

-- name: revokeUserSessions
UPDATE sessions SET revoked_at = $2 WHERE user_id = $1::bigint AND revoked_at IS NULL;

-- name: setRole
UPDATE users SET role = $2 WHERE id = $1::bigint RETURNING id::text AS id;

-- name: otherActiveAdmins
SELECT count(*)::int AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1::bigint;
