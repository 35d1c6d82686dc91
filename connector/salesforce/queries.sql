-- Named queries of the Salesforce sync: connection record, settings, contact links, pushed campaigns, consent changes.

-- name: getConnection
SELECT username, login_url, client_id, instance_url, org_id, api_version, connected_at, has_consent_object,
       last_push_at, last_optout_pull_at, last_link_at, last_consent_push_at, optout_watermark, link_watermark,
       consent_event_watermark, last_error
  FROM salesforce_connection WHERE id = 1;

-- name: saveConnection
INSERT INTO salesforce_connection (id, username, login_url, client_id, instance_url, org_id, api_version, connected_at, has_consent_object, last_error, updated_at)
VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, NULL, $7)
ON CONFLICT (id) DO UPDATE SET
  username = excluded.username, login_url = excluded.login_url, client_id = excluded.client_id,
  instance_url = excluded.instance_url, org_id = excluded.org_id, api_version = excluded.api_version,
  connected_at = excluded.connected_at, has_consent_object = excluded.has_consent_object, last_error = NULL,
  updated_at = excluded.updated_at,
  -- Another org (or another user) starts its watermarks and links from scratch.
  optout_watermark = CASE WHEN salesforce_connection.org_id IS DISTINCT FROM excluded.org_id THEN NULL ELSE salesforce_connection.optout_watermark END,
  link_watermark = CASE WHEN salesforce_connection.org_id IS DISTINCT FROM excluded.org_id THEN NULL ELSE salesforce_connection.link_watermark END;

-- name: setLastError
UPDATE salesforce_connection SET last_error = $1, updated_at = $2 WHERE id = 1;

-- name: markPushed
UPDATE salesforce_connection SET last_push_at = $1, last_error = NULL, updated_at = $1 WHERE id = 1;

-- name: markOptOutPull
UPDATE salesforce_connection SET last_optout_pull_at = $1, optout_watermark = coalesce($2, optout_watermark), last_error = NULL, updated_at = $1 WHERE id = 1;

-- name: markLinked
UPDATE salesforce_connection SET last_link_at = $1, link_watermark = coalesce($2, link_watermark), last_error = NULL, updated_at = $1 WHERE id = 1;

-- name: markConsentPushed
UPDATE salesforce_connection SET last_consent_push_at = $1, consent_event_watermark = greatest(consent_event_watermark, $2), last_error = NULL, updated_at = $1 WHERE id = 1;

-- name: getSettings
SELECT settings, updated_by, updated_at FROM salesforce_settings WHERE id = 1;

-- name: saveSettings
INSERT INTO salesforce_settings (id, settings, updated_by, updated_at) VALUES (1, $1, $2, $3)
ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, updated_by = excluded.updated_by, updated_at = excluded.updated_at;

-- name: unlinkPatientsOrContacts
DELETE FROM salesforce_contact_links WHERE patient_id = ANY($1::bigint[]) OR contact_bidx = ANY($2::bytea[]);

-- name: insertLinks
INSERT INTO salesforce_contact_links (patient_id, contact_bidx, contact_sealed, matched_by, linked_at)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::timestamptz[]);

-- name: linksByPatients
SELECT patient_id, contact_sealed FROM salesforce_contact_links WHERE patient_id = ANY($1::bigint[]);

-- name: linksByContacts
SELECT patient_id, contact_bidx FROM salesforce_contact_links WHERE contact_bidx = ANY($1::bytea[]);

-- name: countLinks
SELECT count(*) AS n FROM salesforce_contact_links;

-- name: sources
SELECT DISTINCT source FROM patients ORDER BY source;

-- name: getPushedCampaign
SELECT campaign_key, sf_campaign_id, fields_sent FROM salesforce_campaigns WHERE campaign_key = $1;

-- name: savePushedCampaign
INSERT INTO salesforce_campaigns (campaign_key, sf_campaign_id, fields_sent, pushed_by, pushed_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (campaign_key) DO UPDATE SET sf_campaign_id = excluded.sf_campaign_id, fields_sent = excluded.fields_sent,
  pushed_by = excluded.pushed_by, pushed_at = excluded.pushed_at;

-- name: pushedMembers
SELECT patient_id FROM salesforce_campaign_members WHERE campaign_key = $1 AND patient_id = ANY($2::bigint[]);

-- name: insertMembers
INSERT INTO salesforce_campaign_members (campaign_key, patient_id, sf_member_id, pushed_at)
SELECT $1, v.patient_id, v.member_id, $4 FROM unnest($2::bigint[], $3::text[]) AS v(patient_id, member_id)
ON CONFLICT (campaign_key, patient_id) DO NOTHING;

-- name: consentChangesAfter
SELECT DISTINCT patient_id FROM authorization_events
 WHERE id > $1 AND id <= $3 AND channel = 'email' AND recorded_by <> $2
 ORDER BY patient_id;

-- name: lastConsentEvent
SELECT coalesce(max(id), 0) AS last_id FROM authorization_events;

-- name: storedCampaign
SELECT c.id, c.name, c.purpose, c.status, c.audience_kind, c.snapshot_id, c.contact_patient_id, s.name AS segment_name
  FROM campaigns c
  LEFT JOIN segment_versions v ON v.id = c.segment_version_id
  LEFT JOIN segments s ON s.id = v.segment_id
 WHERE c.id = $1;

-- name: snapshotMembers
SELECT patient_id FROM segment_snapshot_members WHERE snapshot_id = $1 ORDER BY patient_id;

-- name: patientsByEmailIndex
SELECT id, email_bidx FROM patients WHERE email_bidx = ANY($1::bytea[]);

-- name: patientsBySourceIndex
SELECT id, source_patient_bidx FROM patients WHERE source = $1 AND source_patient_bidx = ANY($2::bytea[]);

-- name: setCrmIndexes
UPDATE patients p SET crm_bidx = v.bidx
  FROM unnest($1::bigint[], $2::bytea[]) AS v(id, bidx)
 WHERE p.id = v.id;
