-- Accounts people can get back into (issue #28): verified e-mail, password reset, e-mail
-- change, two-factor sign-in, and the mail queue that carries their links.

-- NULL until the address is verified (a link mailed at signup and on every change).
-- The language the account's mails are written in.
ALTER TABLE users
    ADD COLUMN email_verified_at timestamptz,
    ADD COLUMN language text NOT NULL DEFAULT 'en',
    ADD CONSTRAINT users_language CHECK (language IN ('en', 'fr'));

-- Single-use links mailed to an account. Only a SHA-256 of the token is kept (the token is
-- 256 random bits: a slow hash would add nothing, and lookups need a stable one). One live
-- token per account and purpose: a newer one replaces (supersedes) the older; using one
-- deletes it.
CREATE TABLE account_tokens (
    token_hash bytea       PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
    -- The address the link was sent to: the one it verifies, or the one an e-mail change moves to.
    email      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX account_tokens_one_per_purpose ON account_tokens (user_id, purpose);

-- TOTP (RFC 6238): the shared secret, on once a first code confirmed it. last_step is the
-- time step of the last code accepted: a code is never accepted twice, nor an older one.
CREATE TABLE user_totp (
    user_id    bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     text        NOT NULL,
    enabled_at timestamptz,
    last_step  bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes (SHA-256 of 80 random bits each); a used one is deleted.
CREATE TABLE user_recovery_codes (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea  NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Mails waiting to leave, written in the transaction that asked for them: a mail is sent
-- only if that transaction commits, and is never lost once it has. The sender of any
-- instance claims due rows, delivers them after the commit and deletes them (their bodies
-- hold links, so they are kept no longer than needed); a failure is retried with backoff.
CREATE TABLE mail_queue (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    text_body       text        NOT NULL,
    html_body       text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at);

-- A committed mail wakes every instance's sender (LISTEN nubo_mail) instead of its next poll.
CREATE FUNCTION mail_queue_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nubo_mail', '');
    RETURN NULL;
END $$;

CREATE TRIGGER mail_queue_wake AFTER INSERT ON mail_queue FOR EACH STATEMENT EXECUTE FUNCTION mail_queue_wake();
