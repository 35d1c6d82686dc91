-- Archived segments and templates (hidden from lists, every version kept for the campaigns that name one) and each segment's last count.
ALTER TABLE segments ADD COLUMN IF NOT EXISTS archived_at timestamptz;
ALTER TABLE segments ADD COLUMN IF NOT EXISTS archived_by text;
-- The size of the segment version last counted or explained, and when: an aggregate, never a member.
ALTER TABLE segments ADD COLUMN IF NOT EXISTS last_count int CHECK (last_count >= 0);
ALTER TABLE segments ADD COLUMN IF NOT EXISTS last_counted_at timestamptz;
ALTER TABLE segments ADD COLUMN IF NOT EXISTS last_counted_version_id bigint REFERENCES segment_versions (id);

ALTER TABLE templates ADD COLUMN IF NOT EXISTS archived_at timestamptz;
ALTER TABLE templates ADD COLUMN IF NOT EXISTS archived_by text;
