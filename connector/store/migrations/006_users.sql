-- Users, roles and sessions: scrypt password hashes, lockout counters, and sessions stored only as token hashes.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  username text NOT NULL UNIQUE CHECK (username = lower(username) AND length(username) BETWEEN 1 AND 64),
  role text NOT NULL CHECK (role IN ('admin', 'marketer', 'clinician')),
  -- 'scrypt$N$r$p' so the cost can be raised without breaking old hashes.
  password_params text NOT NULL,
  password_salt bytea NOT NULL,
  password_hash bytea NOT NULL,
  must_change_password boolean NOT NULL DEFAULT false,
  failed_logins int NOT NULL DEFAULT 0,
  locked_until timestamptz,
  disabled_at timestamptz,
  created_at timestamptz NOT NULL,
  last_login_at timestamptz
);

CREATE TABLE sessions (
  id bigserial PRIMARY KEY,
  -- SHA-256 of the opaque bearer token; the token itself is never stored.
  token_hash bytea NOT NULL UNIQUE,
  user_id bigint NOT NULL REFERENCES users (id),
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
