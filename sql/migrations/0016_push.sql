-- Push notifications (nubo_backend/push/): where to push, and the durable queue of pushes.

-- One row per place a user's pushes go: a Web Push subscription (endpoint and keys, one per
-- session) or a native device token (APNs, FCM). Tied to the session that registered it: the
-- sender deletes a row whose session is gone (logout, revocation, expiry) instead of pushing.
CREATE TABLE push_subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
    endpoint    text        NOT NULL,  -- webpush: the endpoint URL; apns, fcm: the device token
    origin      text        NOT NULL,  -- webpush: the endpoint's scheme://host:port; apns, fcm: the kind
    p256dh      text,                  -- webpush: the user agent's public key (base64url)
    auth        text,                  -- webpush: the authentication secret (base64url)
    alerts      jsonb       NOT NULL DEFAULT '{}',  -- kinds turned off: {"like": false}
    policy      text        NOT NULL DEFAULT 'all' CHECK (policy IN ('all', 'followed', 'follower', 'none')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT push_subscriptions_endpoint_key UNIQUE (kind, endpoint)
);
-- One Web Push subscription per session (a new one replaces it, as Mastodon does).
CREATE UNIQUE INDEX push_subscriptions_session_webpush ON push_subscriptions (session_id) WHERE kind = 'webpush';
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id);

-- Pushes to make: one row per (event, subscription), so each is pushed at most once. Written
-- by the outbox relay in its batch transaction; taken by the sender with SKIP LOCKED, deleted
-- once the push service took it, gave up on it, or its TTL ran out.
CREATE TABLE push_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint      NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    event_id        bigint      NOT NULL,  -- the recipient's own event id
    kind            text        NOT NULL,  -- message, mention, comment, like, follow
    payload         text        NOT NULL,  -- the JSON pushed (small: kind, ids, preview)
    urgency         text        NOT NULL DEFAULT 'normal',
    topic           text,                  -- RFC 8030 Topic / apns-collapse-id / FCM collapse_key
    not_before      timestamptz NOT NULL DEFAULT now(),  -- the grace, then each retry's backoff
    expires_at      timestamptz NOT NULL,  -- the TTL: past it the push is dropped
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT push_jobs_once UNIQUE (subscription_id, event_id)
);
CREATE INDEX push_jobs_due_idx ON push_jobs (not_before);

-- New jobs wake every instance's sender (LISTEN nubo_push); a poll covers a lost wake-up.
CREATE FUNCTION push_jobs_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nubo_push', '');
    RETURN NULL;
END $$;

CREATE TRIGGER push_jobs_wake AFTER INSERT ON push_jobs FOR EACH STATEMENT EXECUTE FUNCTION push_jobs_wake();
