-- Blocks and mutes. A block hides two people from each other (whoever made it); a mute
-- hides the muted person's posts from the muter's feed and their notifications, silently.
CREATE TABLE blocks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    blocker_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id),
    CONSTRAINT blocks_once UNIQUE (blocker_id, blocked_id)
);
-- "Who blocked me" (a block works both ways), and GET /me/blocks newest first.
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);
CREATE INDEX blocks_page_idx ON blocks (blocker_id, id DESC);

CREATE TABLE mutes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    muter_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    muted_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mutes_not_self CHECK (muter_id <> muted_id),
    CONSTRAINT mutes_once UNIQUE (muter_id, muted_id)
);
CREATE INDEX mutes_page_idx ON mutes (muter_id, id DESC);

-- Moderators can lift a suspension (DELETE /users/{id}/suspension): a new action in the log.
ALTER TABLE moderation_actions DROP CONSTRAINT moderation_actions_action_check;
ALTER TABLE moderation_actions ADD CONSTRAINT moderation_actions_action_check
    CHECK (action IN ('dismiss', 'remove', 'suspend', 'set_role', 'unsuspend'));
