-- Conversations (direct 1:1 or group), their members, and permanent messages.
CREATE TABLE conversations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('direct', 'group')),
    title           text,
    -- "<smaller user id>:<larger user id>" for direct conversations: one per pair.
    direct_key      text UNIQUE,
    created_by      bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_id bigint,
    last_activity   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_direct_has_key CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CONSTRAINT conversations_group_has_title CHECK (kind = 'direct' OR title IS NOT NULL)
);

CREATE TABLE conversation_members (
    conversation_id      bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id              bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 text        NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at            timestamptz NOT NULL DEFAULT now(),
    last_read_message_id bigint,
    PRIMARY KEY (conversation_id, user_id)
);
-- "My conversations" and "people I talk to" start from the user.
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id       bigint      REFERENCES users (id) ON DELETE SET NULL,
    -- The sender's idempotency key: a retried send with the same client_id is not stored twice.
    client_id       text,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    edited_at       timestamptz,
    deleted_at      timestamptz,
    CONSTRAINT messages_sender_client_id_key UNIQUE (sender_id, client_id)
);
-- Newest-first pages of one conversation.
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id DESC);
