-- Named queries of templates and their versions (loaded by template-store.ts).

-- name: insertTemplate
INSERT INTO templates (name, description, created_by) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING id;

-- name: templateByName
SELECT id, name, description, created_by, created_at, archived_at FROM templates WHERE name = $1;

-- name: lockTemplate
SELECT id FROM templates WHERE id = $1 FOR UPDATE;

-- name: latestVersion
SELECT v.id, v.template_id, t.name, v.version, v.subject, v.preheader, v.html, v.text_body, v.from_name, v.content_hash,
       v.merge_tags, v.phi_class, v.delivery_modes, v.created_by, v.created_at
  FROM template_versions v JOIN templates t ON t.id = v.template_id
 WHERE v.template_id = $1 ORDER BY v.version DESC LIMIT 1;

-- name: versionByNumber
SELECT v.id, v.template_id, t.name, v.version, v.subject, v.preheader, v.html, v.text_body, v.from_name, v.content_hash,
       v.merge_tags, v.phi_class, v.delivery_modes, v.created_by, v.created_at
  FROM template_versions v JOIN templates t ON t.id = v.template_id
 WHERE v.template_id = $1 AND v.version = $2;

-- name: versionById
SELECT v.id, v.template_id, t.name, v.version, v.subject, v.preheader, v.html, v.text_body, v.from_name, v.content_hash,
       v.merge_tags, v.phi_class, v.delivery_modes, v.created_by, v.created_at
  FROM template_versions v JOIN templates t ON t.id = v.template_id
 WHERE v.id = $1;

-- name: insertVersion
INSERT INTO template_versions (template_id, version, subject, preheader, html, text_body, from_name, content_hash,
                               merge_tags, phi_class, delivery_modes, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id, created_at;

-- name: listTemplates
SELECT t.id, t.name, t.description, t.created_by, t.created_at,
       v.id AS version_id, v.version, v.content_hash, v.phi_class, v.merge_tags, v.created_at AS version_created_at
  FROM templates t
  JOIN LATERAL (SELECT id, version, content_hash, phi_class, merge_tags, created_at FROM template_versions
                 WHERE template_id = t.id ORDER BY version DESC LIMIT 1) v ON true
 WHERE t.archived_at IS NULL
 ORDER BY t.name;

-- name: listVersions
SELECT v.id, v.template_id, t.name, v.version, v.subject, v.preheader, v.html, v.text_body, v.from_name, v.content_hash,
       v.merge_tags, v.phi_class, v.delivery_modes, v.created_by, v.created_at
  FROM template_versions v JOIN templates t ON t.id = v.template_id
 WHERE v.template_id = $1 ORDER BY v.version;

-- name: archiveTemplate
UPDATE templates SET archived_at = $2, archived_by = $3 WHERE name = $1 AND archived_at IS NULL RETURNING id;
