-- Named queries of the API: sender addresses, and the existence check patient routes make before touching consent.

-- name: patientExists
SELECT 1 AS found FROM patients WHERE id = $1::bigint;

-- name: insertSender
INSERT INTO senders (address, domain, display_name, dkim_selector, verified_at, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (address) DO NOTHING
RETURNING id::text AS id, address, display_name, dkim_selector, verified_at;

-- name: listSenders
SELECT id::text AS id, address, display_name, dkim_selector, verified_at FROM senders ORDER BY address;

-- name: senderById
SELECT id::text AS id, address, display_name, dkim_selector, verified_at FROM senders WHERE id = $1::bigint;

-- name: deleteSender
DELETE FROM senders WHERE id = $1::bigint RETURNING id::text AS id;

-- name: unverifiedSenders
SELECT id::text AS id, address, domain, display_name, dkim_selector, verified_at FROM senders WHERE verified_at IS NULL;

-- name: markSenderVerified
UPDATE senders SET verified_at = $2 WHERE id = $1::bigint AND verified_at IS NULL;

-- name: templatePurposes
SELECT template_id::text AS template_id, purpose FROM template_purposes;

-- name: setTemplatePurpose
INSERT INTO template_purposes (template_id, purpose, updated_at) VALUES ($1::bigint, $2, now())
ON CONFLICT (template_id) DO UPDATE SET purpose = EXCLUDED.purpose, updated_at = EXCLUDED.updated_at;

-- name: endpointRuns
SELECT endpoint, use_bulk_export, last_sync_status, last_sync_at FROM endpoint_runs;

-- name: setEndpointMode
INSERT INTO endpoint_runs (endpoint, use_bulk_export) VALUES ($1, $2)
ON CONFLICT (endpoint) DO UPDATE SET use_bulk_export = EXCLUDED.use_bulk_export;

-- name: deleteEndpointRun
DELETE FROM endpoint_runs WHERE endpoint = $1;

-- name: claimEndpointSync
INSERT INTO endpoint_runs (endpoint, last_sync_id, last_sync_status, last_sync_at) VALUES ($1, $2, 'running', $3)
ON CONFLICT (endpoint) DO UPDATE SET last_sync_id = EXCLUDED.last_sync_id, last_sync_status = 'running', last_sync_at = EXCLUDED.last_sync_at,
  last_sync_error = NULL
WHERE endpoint_runs.last_sync_status <> 'running'
RETURNING use_bulk_export;

-- name: finishEndpointSync
UPDATE endpoint_runs SET last_sync_status = $3, last_sync_at = $4, last_sync_error = $5 WHERE endpoint = $1 AND last_sync_id = $2;

-- name: lastCampaign
SELECT c.id::text AS id, c.name, o.finished_at AS sent_at
  FROM delivery_outbox o JOIN campaigns c ON o.campaign_id = 'campaign/' || c.id::text
 WHERE o.patient_id = $1 AND o.state IN ('delivered', 'notice_sent') AND o.finished_at IS NOT NULL
 ORDER BY o.finished_at DESC
 LIMIT 1;
