-- Named queries of saved segments, their versions and membership snapshots (loaded by segment-repository.ts).

-- name: insertSegment
INSERT INTO segments (name, description, created_by) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING id;

-- name: segmentByName
SELECT id, name, description, created_by, created_at, archived_at FROM segments WHERE name = $1;

-- name: lockSegment
SELECT id FROM segments WHERE id = $1 FOR UPDATE;

-- name: latestVersion
SELECT id, segment_id, version, definition, definition_hash, created_by, created_at
  FROM segment_versions WHERE segment_id = $1 ORDER BY version DESC LIMIT 1;

-- name: versionByNumber
SELECT id, segment_id, version, definition, definition_hash, created_by, created_at
  FROM segment_versions WHERE segment_id = $1 AND version = $2;

-- name: versionById
SELECT v.id, v.segment_id, v.version, v.definition, v.definition_hash, v.created_by, v.created_at, s.name
  FROM segment_versions v JOIN segments s ON s.id = v.segment_id WHERE v.id = $1;

-- name: insertVersion
INSERT INTO segment_versions (segment_id, version, definition, definition_hash, created_by)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, segment_id, version, definition, definition_hash, created_by, created_at;

-- name: listSegments
SELECT s.id, s.name, s.description, s.created_by, s.created_at,
       v.id AS version_id, v.version, v.definition_hash, v.created_at AS version_created_at,
       s.last_count, s.last_counted_at, s.last_counted_version_id
  FROM segments s
  JOIN LATERAL (SELECT id, version, definition_hash, created_at FROM segment_versions
                 WHERE segment_id = s.id ORDER BY version DESC LIMIT 1) v ON true
 WHERE s.archived_at IS NULL
 ORDER BY s.name;

-- name: listVersions
SELECT id, segment_id, version, definition, definition_hash, created_by, created_at
  FROM segment_versions WHERE segment_id = $1 ORDER BY version;

-- name: insertSnapshot
INSERT INTO segment_snapshots (segment_version_id, definition_hash, as_of, member_count, reason, taken_by)
VALUES ($1, $2, $3::date, $4, $5, $6)
RETURNING id, taken_at;

-- name: insertSnapshotMembers
INSERT INTO segment_snapshot_members (snapshot_id, patient_id)
SELECT $1::bigint, unnest($2::bigint[]);

-- name: snapshotById
SELECT id, segment_version_id, definition_hash, to_char(as_of, 'YYYY-MM-DD') AS as_of, member_count, reason, taken_by, taken_at
  FROM segment_snapshots WHERE id = $1;

-- name: snapshotMembersPage
SELECT patient_id FROM segment_snapshot_members
 WHERE snapshot_id = $1 AND patient_id > $2 ORDER BY patient_id LIMIT $3;

-- name: archiveSegment
UPDATE segments SET archived_at = $2, archived_by = $3 WHERE name = $1 AND archived_at IS NULL RETURNING id;

-- name: recordCount
UPDATE segments SET last_count = $2, last_counted_at = $3, last_counted_version_id = $1
 WHERE id = (SELECT segment_id FROM segment_versions WHERE id = $1)
   AND (last_counted_at IS NULL OR last_counted_at <= $3);
