-- Named queries of campaigns (loaded by connector/campaigns/campaign-service.ts and recipients.ts); the same SQL on PGlite and PostgreSQL.

-- name: insertCampaign
INSERT INTO campaigns (name, purpose, delivery_mode, template_version_id, audience_kind, segment_version_id, contact_patient_id,
  created_by, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
RETURNING *;

-- name: sealContact
UPDATE campaigns SET contact_sealed = $2 WHERE id = $1;

-- name: byId
SELECT * FROM campaigns WHERE id = $1;

-- name: lockById
SELECT * FROM campaigns WHERE id = $1 FOR UPDATE;

-- name: list
SELECT * FROM campaigns
WHERE ($1::text IS NULL OR status = $1) AND id > $2
ORDER BY id
LIMIT $3;

-- name: updateContent
UPDATE campaigns
SET name = $2, purpose = $3, delivery_mode = $4, template_version_id = $5, audience_kind = $6, segment_version_id = $7,
    contact_patient_id = $8, contact_sealed = $9, status = 'draft', revision = revision + 1, approval_hash = NULL,
    approved_by = NULL, approved_at = NULL, snapshot_id = NULL, audience_count = NULL, scheduled_at = NULL, updated_at = $10
WHERE id = $1
RETURNING *;

-- name: setStatus
UPDATE campaigns SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *;

-- name: setApproved
UPDATE campaigns
SET status = 'approved', approval_hash = $2, approval_seq = approval_seq + 1, approved_by = $3, approved_at = $4,
    snapshot_id = $5, audience_count = $6, updated_at = $4
WHERE id = $1
RETURNING *;

-- name: clearApproval
UPDATE campaigns
SET status = $2, approval_hash = NULL, approved_by = NULL, approved_at = NULL, snapshot_id = NULL, scheduled_at = NULL, updated_at = $3
WHERE id = $1
RETURNING *;

-- name: setScheduled
UPDATE campaigns SET status = 'scheduled', scheduled_at = $2, updated_at = $3 WHERE id = $1 RETURNING *;

-- name: claimDue
-- Due scheduled campaigns, and campaigns whose send run started before $3 and never finished (the process died): a
-- rerun queues nobody twice (idempotency keys), so it is safe to take them again.
UPDATE campaigns SET status = 'sending', updated_at = $1, send_report = NULL
WHERE id IN (
  SELECT id FROM campaigns
  WHERE (status = 'scheduled' AND scheduled_at <= $1) OR (status = 'sending' AND send_report IS NULL AND updated_at < $3)
  ORDER BY scheduled_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: setSendReport
UPDATE campaigns SET send_report = $2::jsonb, updated_at = $3 WHERE id = $1 RETURNING *;

-- name: sendingCampaigns
SELECT id FROM campaigns WHERE status = 'sending' ORDER BY id;

-- name: markSent
UPDATE campaigns SET status = 'sent', sent_at = $2, updated_at = $2
WHERE id = $1 AND status = 'sending' AND send_report IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM delivery_outbox o WHERE o.campaign_id = $3 AND o.state IN ('queued', 'held', 'sending'))
RETURNING *;

-- name: insertDecision
INSERT INTO campaign_decisions (campaign_id, decision, by_user, role, revision, approval_hash, at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id;

-- name: sealDecisionComment
UPDATE campaign_decisions SET comment_sealed = $2 WHERE id = $1;

-- name: signDecision
UPDATE campaign_decisions SET practitioner = $2, ehr_iss = $3 WHERE id = $1;

-- name: decisionsOf
SELECT * FROM campaign_decisions WHERE campaign_id = $1 ORDER BY id;

-- name: latestSegmentVersion
SELECT id FROM segment_versions WHERE segment_id = $1 ORDER BY version DESC LIMIT 1;

-- name: latestTemplateVersion
SELECT id FROM template_versions WHERE template_id = $1 ORDER BY version DESC LIMIT 1;

-- name: approvedForTemplate
SELECT id FROM campaigns
WHERE template_version_id = $1 AND purpose = $2 AND delivery_mode = $3 AND approval_hash IS NOT NULL
  AND status IN ('approved', 'scheduled', 'sending', 'sent')
LIMIT 1;

-- name: suppressedAmong
SELECT address_index, patient_id, reason FROM delivery_suppressions
WHERE address_index = ANY($1::bytea[]) OR (patient_id = ANY($2::text[]) AND reason = 'complaint');

-- name: alreadyQueued
SELECT DISTINCT patient_id FROM delivery_outbox
WHERE campaign_id = $1 AND patient_id = ANY($2::text[]) AND state NOT IN ('cancelled', 'failed');

-- name: bouncesOf
SELECT count(*)::int AS n FROM delivery_suppressions s JOIN delivery_outbox o ON o.id = s.outbox_id
WHERE o.campaign_id = $1 AND s.reason = 'hard-bounce';

-- name: unsubscribedOf
SELECT count(*)::int AS n FROM delivery_outbox
WHERE campaign_id = $1 AND state = 'cancelled' AND (cancel_reason LIKE 'unsubscribed%' OR cancel_reason LIKE 'consent:%');

-- name: opensOf
SELECT count(DISTINCT outbox_id)::int AS n FROM tracking_events WHERE campaign_id = $1 AND kind = 'open' AND NOT machine;

-- name: sendable
SELECT status, approval_hash FROM campaigns WHERE id = $1;

-- name: templateOfVersion
-- Whether the template a version belongs to is archived (new campaigns and journeys name only live ones).
SELECT t.id, t.archived_at FROM template_versions v JOIN templates t ON t.id = v.template_id WHERE v.id = $1;

-- name: segmentOfVersion
SELECT s.id, s.archived_at FROM segment_versions v JOIN segments s ON s.id = v.segment_id WHERE v.id = $1;
