-- Passkeys (WebAuthn) as a second factor (issue #28): a registered credential's public key,
-- checked by py_webauthn at each sign-in. The signature counter is kept to notice a cloned
-- authenticator (one that reports a counter not above the last).
CREATE TABLE user_passkeys (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL UNIQUE,
    public_key    bytea       NOT NULL,
    sign_count    bigint      NOT NULL DEFAULT 0,
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX user_passkeys_user ON user_passkeys (user_id);
