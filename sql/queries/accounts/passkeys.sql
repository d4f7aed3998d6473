-- name: passkeys_of(user_id)
SELECT id, credential_id, name, created_at, last_used_at FROM user_passkeys
WHERE user_id = :user_id ORDER BY id;

-- name: passkey_by_credential(user_id, credential_id)^
SELECT id, public_key, sign_count FROM user_passkeys
WHERE user_id = :user_id AND credential_id = :credential_id;

-- name: add_passkey(user_id, credential_id, public_key, sign_count, name)^
INSERT INTO user_passkeys (user_id, credential_id, public_key, sign_count, name)
VALUES (:user_id, :credential_id, :public_key, :sign_count, :name)
ON CONFLICT (credential_id) DO NOTHING
RETURNING id, name, created_at, last_used_at;

-- name: passkey_used(id, sign_count)!
UPDATE user_passkeys SET sign_count = :sign_count, last_used_at = now() WHERE id = :id;

-- name: remove_passkey(user_id, id)$
DELETE FROM user_passkeys WHERE user_id = :user_id AND id = :id RETURNING id;
