-- Accounts: creation, credentials lookup, profile and password changes.

-- name: create_user(username, email, password_hash, language)^
INSERT INTO users (username, email, password_hash, language)
VALUES (:username, :email, :password_hash, :language)
RETURNING id, username, email, display_name, bio, avatar_url, created_at, language;

-- name: taken_fields(username, email)^
-- Which of username / email another account already uses (case-insensitively).
SELECT
    coalesce(bool_or(lower(username) = lower(:username)), false) AS username,
    coalesce(bool_or(lower(email) = lower(:email)), false) AS email
FROM users
WHERE lower(username) = lower(:username) OR lower(email) = lower(:email);

-- name: credentials_by_username(username)^
SELECT id, username, email, display_name, bio, avatar_url, created_at, password_hash, suspended_at
FROM users WHERE lower(username) = lower(:username);

-- name: credentials_by_email(email)^
SELECT id, username, email, display_name, bio, avatar_url, created_at, password_hash, suspended_at
FROM users WHERE lower(email) = lower(:email);

-- name: account_active(user_id)$
-- The auth guard's account check: the account exists and is not suspended (moderation).
SELECT EXISTS (SELECT 1 FROM users WHERE id = :user_id AND suspended_at IS NULL);

-- name: password_hash(user_id)$
SELECT password_hash FROM users WHERE id = :user_id;

-- name: get_account(user_id)^
SELECT id, username, email, display_name, bio, avatar_url, created_at, email_verified_at, language,
       (EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = users.id AND t.enabled_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM user_passkeys p WHERE p.user_id = users.id)) AS two_factor
FROM users WHERE id = :user_id;

-- name: update_profile(user_id, set_display_name, display_name, set_bio, bio, set_avatar_url, avatar_url, language)^
-- Only the fields flagged set_* change (language: when not null); avatar_url may be set to NULL.
UPDATE users SET
    display_name = CASE WHEN :set_display_name::boolean THEN :display_name::text ELSE display_name END,
    bio          = CASE WHEN :set_bio::boolean THEN :bio::text ELSE bio END,
    avatar_url   = CASE WHEN :set_avatar_url::boolean THEN :avatar_url::text ELSE avatar_url END,
    language     = coalesce(:language::text, language),
    updated_at   = now()
WHERE id = :user_id
RETURNING id, username, email, display_name, bio, avatar_url, created_at, email_verified_at, language,
          (EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = users.id AND t.enabled_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM user_passkeys p WHERE p.user_id = users.id)) AS two_factor;

-- name: replace_password_hash(user_id, old_hash, new_hash)$
-- Compare-and-set: a concurrent password change wins over a rehash on login.
UPDATE users SET password_hash = :new_hash, updated_at = now()
WHERE id = :user_id AND password_hash = :old_hash
RETURNING id;
