-- Registers every sealed column the sending, SMART, delivery, campaign and portal modules write, with the row id their AAD uses, so key rotation reseals them.
-- Each row names the column whose value is the AAD row id: its text form, or ('hex') the lower-case hex of a bytea key.
--   sending_dkim_keys   connector/sending/dkim-keys.ts      rowId = String(id)
--   smart_sessions      connector/smart/app-sessions.ts     rowId = hex(token_hash)   (token_hash is UNIQUE NOT NULL)
--   smart_launches      connector/smart/launch-flow.ts      rowId = hex(state_hash)   (primary key)
--   tracking_tokens     connector/delivery/tracking.ts      rowId = hex(token_hash)   (primary key)
--   campaigns           connector/campaigns/campaign-service.ts  rowId = String(id)
--   campaign_decisions  connector/campaigns/campaign-service.ts  rowId = String(id)
--   escrow_messages     connector/portal/escrow-portal.ts   rowId = String(id)
-- A re-run corrects a row registered earlier with another id column or format.
INSERT INTO sealed_columns (table_name, column_name, id_column, row_id_format) VALUES
  ('sending_dkim_keys', 'private_key_sealed', 'id', 'text'),
  ('smart_sessions', 'access_token_sealed', 'token_hash', 'hex'),
  ('smart_launches', 'verifier_sealed', 'state_hash', 'hex'),
  ('tracking_tokens', 'target_sealed', 'token_hash', 'hex'),
  ('campaigns', 'contact_sealed', 'id', 'text'),
  ('campaign_decisions', 'comment_sealed', 'id', 'text'),
  ('escrow_messages', 'address_sealed', 'id', 'text'),
  ('escrow_messages', 'content_sealed', 'id', 'text')
  ON CONFLICT (table_name, column_name) DO UPDATE SET id_column = EXCLUDED.id_column, row_id_format = EXCLUDED.row_id_format;
