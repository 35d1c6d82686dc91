-- Named queries of the sending service (DKIM keys of sender domains).

-- name: insertKey
INSERT INTO sending_dkim_keys (domain, selector, private_key_sealed, public_key, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (domain, selector) DO NOTHING
RETURNING id;

-- name: sealKey
UPDATE sending_dkim_keys SET private_key_sealed = $2 WHERE id = $1;

-- name: keyOf
SELECT * FROM sending_dkim_keys WHERE domain = $1 AND selector = $2;
