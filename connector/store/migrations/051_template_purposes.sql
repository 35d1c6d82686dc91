-- The purpose each template is written for (marketing or a treatment reminder), as the API names it; one row per template.
CREATE TABLE IF NOT EXISTS template_purposes (
  template_id bigint PRIMARY KEY REFERENCES templates (id) ON DELETE CASCADE,
  purpose text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
