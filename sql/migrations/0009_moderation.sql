-- Moderation: a role on users, suspensions, reports and the log of moderator actions.
ALTER TABLE users
    ADD COLUMN role         text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator')),
    ADD COLUMN suspended_at timestamptz;

CREATE TABLE reports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    target_type    text   NOT NULL CHECK (target_type IN ('user', 'post', 'comment', 'message')),
    -- No foreign key: the report outlives the content it is about (removed, or erased).
    target_id      bigint NOT NULL,
    -- The account behind the target (the user, or the author / sender): who a suspension hits.
    target_user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    reason         text   NOT NULL CHECK (reason IN (
        'spam', 'harassment', 'hate', 'violence', 'sexual', 'self_harm',
        'misinformation', 'impersonation', 'illegal', 'other')),
    note           text   NOT NULL DEFAULT '',
    -- The reported content as it was when reported.
    snapshot       jsonb  NOT NULL,
    status         text   NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution     text   CHECK (resolution IN ('dismiss', 'remove', 'suspend')),
    resolved_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    resolved_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reports_resolved_has_resolution CHECK ((status = 'resolved') = (resolution IS NOT NULL))
);
-- GET /reports: open ones first, newest first within each status.
CREATE INDEX reports_queue_idx ON reports ((status <> 'open'), id DESC);

-- Every moderator action, never updated nor deleted. moderator_id NULL: done from the CLI.
CREATE TABLE moderation_actions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id      bigint REFERENCES reports (id) ON DELETE CASCADE,
    moderator_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    action         text   NOT NULL CHECK (action IN ('dismiss', 'remove', 'suspend', 'set_role')),
    target_type    text   NOT NULL,
    target_id      bigint NOT NULL,
    details        jsonb  NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_actions_report_idx ON moderation_actions (report_id, id);
