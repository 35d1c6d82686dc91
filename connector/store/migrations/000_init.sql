-- The store's first migration: marks the schema as Secure Outreach's. Each capability adds its own numbered files:
-- 001-009 store, keys, consent, audit, users · 010-019 ingest · 020-029 segments · 030-039 compose, campaigns
-- 040-049 delivery · 050-059 api, salesforce · 060-069 journeys · 070-079 smart app
CREATE TABLE IF NOT EXISTS store_info (
  id int PRIMARY KEY CHECK (id = 1),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO store_info (id) VALUES (1) ON CONFLICT DO NOTHING;
