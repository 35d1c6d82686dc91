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

-- name: templatePurposes
SELECT template_id::text AS template_id, purpose FROM template_purposes;

-- name: setTemplatePurpose
INSERT INTO template_purposes (template_id, purpose, updated_at) VALUES ($1::bigint, $2, now())
ON CONFLICT (template_id) DO UPDATE SET purpose = EXCLUDED.purpose, updated_at = EXCLUDED.updated_at;
