-- Salesforce sync: the connection record and watermarks, the admin's sync settings, contact links, pushed campaigns and members.
CREATE TABLE IF NOT EXISTS salesforce_connection (
  id int PRIMARY KEY CHECK (id = 1),
  username text NOT NULL,
  login_url text NOT NULL,
  client_id text NOT NULL,
  instance_url text,
  org_id text,
  api_version text,
  connected_at timestamptz,
  -- Whether the org has ContactPointTypeConsent (Data Protection and Privacy), found by describing it at connect.
  has_consent_object boolean NOT NULL DEFAULT false,
  last_push_at timestamptz,
  last_optout_pull_at timestamptz,
  last_link_at timestamptz,
  last_consent_push_at timestamptz,
  -- SystemModstamp watermarks of the incremental pulls.
  optout_watermark timestamptz,
  link_watermark timestamptz,
  -- The last authorization_events id whose state was written back to Salesforce.
  consent_event_watermark bigint NOT NULL DEFAULT 0,
  -- The registry error code of the last failed call (never Salesforce's message text).
  last_error text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The admin's sync settings (match rule, bulk threshold, PHI policy) as validated JSON; changes are audited.
CREATE TABLE IF NOT EXISTS salesforce_settings (
  id int PRIMARY KEY CHECK (id = 1),
  settings jsonb NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Contact <-> patient links. The Contact id is sealed and blind-indexed: with the patient id it says who is in the CRM.
CREATE TABLE IF NOT EXISTS salesforce_contact_links (
  patient_id bigint PRIMARY KEY,
  contact_bidx bytea NOT NULL UNIQUE,
  contact_sealed bytea NOT NULL,
  matched_by text NOT NULL CHECK (matched_by IN ('external-id', 'email')),
  linked_at timestamptz NOT NULL
);
INSERT INTO sealed_columns (table_name, column_name, id_column) VALUES ('salesforce_contact_links', 'contact_sealed', 'patient_id')
  ON CONFLICT DO NOTHING;

-- Campaigns pushed to Salesforce: our key (`campaign/12`), the Campaign record id and which policy fields went with it.
CREATE TABLE IF NOT EXISTS salesforce_campaigns (
  campaign_key text PRIMARY KEY CHECK (campaign_key ~ '^[A-Za-z0-9._:/-]{1,100}$'),
  sf_campaign_id text NOT NULL,
  fields_sent text[] NOT NULL,
  pushed_by text NOT NULL,
  pushed_at timestamptz NOT NULL
);

-- Members already in the Salesforce campaign: a re-push sends only the new ones.
CREATE TABLE IF NOT EXISTS salesforce_campaign_members (
  campaign_key text NOT NULL REFERENCES salesforce_campaigns (campaign_key) ON DELETE CASCADE,
  patient_id bigint NOT NULL,
  sf_member_id text,
  pushed_at timestamptz NOT NULL,
  PRIMARY KEY (campaign_key, patient_id)
);
