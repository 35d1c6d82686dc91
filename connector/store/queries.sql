-- Named queries of the store: the keyring, reseal jobs, patients (sealed facts), quarantine and sync state.

-- name: dataKeys
SELECT purpose, version, wrapped, kek_id, created_at, retired_at FROM data_keys ORDER BY purpose, version;

-- name: insertDataKey
INSERT INTO data_keys (purpose, version, wrapped, kek_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING;

-- name: retireDataKey
UPDATE data_keys SET wrapped = NULL, retired_at = now() WHERE purpose = 'seal' AND version = $1 AND retired_at IS NULL;

-- name: rewrapDataKey
UPDATE data_keys SET wrapped = $3, kek_id = $4
 WHERE purpose = $1 AND version = $2 AND kek_id = $5 AND wrapped IS NOT NULL
RETURNING version;

-- name: sealedColumns
SELECT table_name, column_name, id_column, row_id_format FROM sealed_columns ORDER BY table_name, column_name;

-- name: insertResealJob
INSERT INTO reseal_jobs (target_version) VALUES ($1) RETURNING id;

-- name: openResealJobs
SELECT id, target_version, created_at FROM reseal_jobs WHERE state = 'running' ORDER BY id;

-- name: resealJobs
SELECT id, target_version, state, created_at, finished_at FROM reseal_jobs ORDER BY id DESC LIMIT $1;

-- name: resealProgress
SELECT job_id, table_name, column_name, cursor, resealed, done FROM reseal_progress WHERE job_id = ANY($1::bigint[]);

-- name: ensureResealProgress
INSERT INTO reseal_progress (job_id, table_name, column_name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING;

-- name: advanceResealProgress
UPDATE reseal_progress SET cursor = $4, resealed = resealed + $5, done = $6
 WHERE job_id = $1 AND table_name = $2 AND column_name = $3;

-- name: finishResealJob
UPDATE reseal_jobs SET state = 'done', finished_at = now() WHERE id = $1 AND state = 'running';

-- name: idColumnType
SELECT format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped;

-- name: patientIdsBySource
SELECT p.id, p.source, p.source_patient_bidx
  FROM patients p JOIN unnest($1::text[], $2::bytea[]) AS v(source, bidx)
    ON p.source = v.source AND p.source_patient_bidx = v.bidx;

-- name: allocatePatientIds
SELECT nextval(pg_get_serial_sequence('patients', 'id')) AS id FROM generate_series(1, $1);

-- name: insertPatients
INSERT INTO patients (id, source, source_patient_bidx, facts, email_bidx, mrn_bidx) OVERRIDING SYSTEM VALUE
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[])
ON CONFLICT (source, source_patient_bidx) DO NOTHING
RETURNING id;

-- name: storePatientFacts
UPDATE patients p
   SET facts = v.facts, email_bidx = v.email_bidx, mrn_bidx = v.mrn_bidx, updated_at = now()
  FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[]) AS v(id, facts, email_bidx, mrn_bidx)
 WHERE p.id = v.id;

-- name: factsBySourceIds
SELECT id, source_patient_bidx, facts FROM patients WHERE source = $1 AND source_patient_bidx = ANY($2::bytea[]);

-- name: factsByIds
SELECT id, facts FROM patients WHERE id = ANY($1::bigint[]);

-- name: factsPageFirst
SELECT id, facts FROM patients ORDER BY id LIMIT $1;

-- name: factsPageAfter
SELECT id, facts FROM patients WHERE id > $1 ORDER BY id LIMIT $2;

-- name: idBySource
SELECT id FROM patients WHERE source = $1 AND source_patient_bidx = $2;

-- name: idsByEmail
SELECT id FROM patients WHERE email_bidx = $1 ORDER BY id;

-- name: idsByMrn
SELECT id FROM patients WHERE mrn_bidx = $1 AND ($2::text IS NULL OR source = $2) ORDER BY id;

-- name: idsByCrm
SELECT id FROM patients WHERE crm_bidx = $1 ORDER BY id;

-- name: setCrmIndex
UPDATE patients SET crm_bidx = $2 WHERE id = $1 RETURNING id;

-- name: countPatients
SELECT count(*) AS n FROM patients;

-- name: insertQuarantine
INSERT INTO quarantine (endpoint, resource_type, resource_bidx, path, reason, file, line, at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::int[], $8::timestamptz[]);

-- name: listQuarantine
SELECT id, endpoint, resource_type, path, reason, file, line, at FROM quarantine
 WHERE ($1::text IS NULL OR endpoint = $1) ORDER BY id DESC LIMIT $2;

-- name: countQuarantine
SELECT count(*) AS n FROM quarantine WHERE ($1::text IS NULL OR endpoint = $1);

-- name: getSyncState
SELECT endpoint, since, mode, updated_at FROM sync_state WHERE endpoint = $1;

-- name: setSyncState
INSERT INTO sync_state (endpoint, since, mode, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (endpoint) DO UPDATE SET since = excluded.since, mode = excluded.mode, updated_at = excluded.updated_at;
