-- Named queries of FHIR ingest: the endpoint registry.

-- name: insertEndpoint
INSERT INTO fhir_endpoints (name, base_url, auth, client_id, alg, kid, scopes, token_url, private_key)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
ON CONFLICT (name) DO NOTHING
RETURNING name, created_at, updated_at;

-- name: listEndpoints
SELECT name, base_url, auth, client_id, alg, kid, scopes, token_url, private_key IS NOT NULL AS has_key, created_at, updated_at
  FROM fhir_endpoints ORDER BY name;

-- name: endpointByName
SELECT name, base_url, auth, client_id, alg, kid, scopes, token_url, private_key, created_at, updated_at
  FROM fhir_endpoints WHERE name = $1;

-- name: deleteEndpoint
DELETE FROM fhir_endpoints WHERE name = $1 RETURNING name;
