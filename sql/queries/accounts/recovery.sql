-- Accounts people can get back into (nubo_backend/accounts): mailed links and the second factor.

-- name: account_for_mail(user_id)^
SELECT id, username, email, language, email_verified_at FROM users WHERE id = :user_id;

-- name: account_by_email(email)^
SELECT id, username, email, language, email_verified_at FROM users WHERE lower(email) = lower(:email);

-- name: email_taken(email)$
SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(:email));

-- name: replace_token(token_hash, user_id, purpose, email, ttl_seconds)!
-- A new link supersedes the account's previous one for the same purpose.
INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at)
VALUES (:token_hash, :user_id, :purpose, :email, now() + make_interval(secs => :ttl_seconds))
ON CONFLICT (user_id, purpose) DO UPDATE
    SET token_hash = EXCLUDED.token_hash, email = EXCLUDED.email,
        expires_at = EXCLUDED.expires_at, created_at = now();

-- name: take_token(token_hash, purposes)^
-- Single use: the token is gone whatever the outcome; `live` says whether it had expired.
DELETE FROM account_tokens WHERE token_hash = :token_hash AND purpose = ANY(:purposes::text[])
RETURNING user_id, purpose, email, expires_at > now() AS live;

-- name: mark_email_verified(user_id, email)$
-- Only the address the link was sent to: a link made before an e-mail change verifies nothing.
UPDATE users SET email_verified_at = coalesce(email_verified_at, now())
WHERE id = :user_id AND lower(email) = lower(:email)
RETURNING id;

-- name: move_email(user_id, email)$
-- The unique index on lower(email) decides when two accounts race for one address.
UPDATE users SET email = :email, email_verified_at = now(), updated_at = now()
WHERE id = :user_id
RETURNING id;

-- name: set_password_hash(user_id, password_hash)$
UPDATE users SET password_hash = :password_hash, updated_at = now() WHERE id = :user_id RETURNING id;

-- name: totp_of(user_id)^
SELECT secret, enabled_at IS NOT NULL AS enabled, last_step FROM user_totp WHERE user_id = :user_id;

-- name: two_factor_on(user_id)$
-- A confirmed TOTP secret or a registered passkey: either makes login ask for a second factor.
SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = :user_id AND enabled_at IS NOT NULL)
    OR EXISTS (SELECT 1 FROM user_passkeys WHERE user_id = :user_id);

-- name: start_totp(user_id, secret)$
-- A new secret to scan, replacing one never confirmed; nothing when two-factor is already on.
INSERT INTO user_totp (user_id, secret) VALUES (:user_id, :secret)
ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, last_step = 0, created_at = now()
    WHERE user_totp.enabled_at IS NULL
RETURNING user_id;

-- name: accept_totp_step(user_id, step)$
-- Compare-and-set: a code's time step is accepted once, and never one older than the last.
UPDATE user_totp SET last_step = :step WHERE user_id = :user_id AND last_step < :step RETURNING user_id;

-- name: enable_totp(user_id)!
UPDATE user_totp SET enabled_at = now() WHERE user_id = :user_id;

-- name: disable_totp(user_id)!
DELETE FROM user_totp WHERE user_id = :user_id;

-- name: clear_recovery_codes(user_id)!
DELETE FROM user_recovery_codes WHERE user_id = :user_id;

-- name: add_recovery_codes(user_id, code_hashes)!
INSERT INTO user_recovery_codes (user_id, code_hash) SELECT :user_id, unnest(:code_hashes::bytea[]);

-- name: use_recovery_code(user_id, code_hash)$
DELETE FROM user_recovery_codes WHERE user_id = :user_id AND code_hash = :code_hash RETURNING user_id;

-- name: recovery_codes_left(user_id)$
SELECT count(*) FROM user_recovery_codes WHERE user_id = :user_id;

-- name: email_verified(user_id)$
SELECT EXISTS (SELECT 1 FROM users WHERE id = :user_id AND email_verified_at IS NOT NULL);
