-- Reports, their targets as they are now, and the moderator action log.

-- name: user_target(target_id)^
SELECT id, username, display_name, bio, avatar_url, created_at
FROM users WHERE id = :target_id;

-- name: post_target(target_id)^
SELECT p.id, p.author_id, u.username AS author_username, p.body, p.media_urls, p.created_at, p.edited_at
FROM posts p JOIN users u ON u.id = p.author_id
WHERE p.id = :target_id;

-- name: comment_target(target_id)^
SELECT c.id, c.post_id, c.author_id, u.username AS author_username, c.body, c.created_at, c.edited_at
FROM comments c JOIN users u ON u.id = c.author_id
WHERE c.id = :target_id;

-- name: message_target(target_id)^
-- A deleted message (a tombstone) is not reportable: nothing of it is shown any more.
SELECT m.id, m.conversation_id, m.sender_id AS author_id, u.username AS author_username,
       m.body, m.created_at, m.edited_at
FROM messages m LEFT JOIN users u ON u.id = m.sender_id
WHERE m.id = :target_id AND m.deleted_at IS NULL;

-- name: insert_report(reporter_id, target_type, target_id, target_user_id, reason, note, snapshot)^
INSERT INTO reports (reporter_id, target_type, target_id, target_user_id, reason, note, snapshot)
VALUES (:reporter_id, :target_type, :target_id, :target_user_id, :reason, :note, :snapshot)
RETURNING *;

-- name: user_role(user_id)$
SELECT role FROM users WHERE id = :user_id;

-- name: reports_page(status, after_rank, after_id, lim)
-- Open first, newest first within a status; keyset on (rank, id). status NULL: both.
SELECT r.*, (r.status <> 'open')::int AS rank
FROM reports r
WHERE (:status::text IS NULL OR r.status = :status::text)
  AND (:after_rank::int IS NULL
       OR (r.status <> 'open')::int > :after_rank::int
       OR ((r.status <> 'open')::int = :after_rank::int AND r.id < :after_id::bigint))
ORDER BY (r.status <> 'open'), r.id DESC
LIMIT :lim;

-- name: report_by_id(report_id)^
SELECT * FROM reports WHERE id = :report_id;

-- name: lock_report(report_id)^
SELECT * FROM reports WHERE id = :report_id FOR UPDATE;

-- name: resolve_report(report_id, resolution, moderator_id)^
UPDATE reports
SET status = 'resolved', resolution = :resolution, resolved_by = :moderator_id, resolved_at = now()
WHERE id = :report_id AND status = 'open'
RETURNING *;

-- name: suspend_user(user_id)^
-- Idempotent: a second suspension keeps the first date.
UPDATE users SET suspended_at = coalesce(suspended_at, now()), updated_at = now()
WHERE id = :user_id
RETURNING id, role, suspended_at;

-- name: record_action(report_id, moderator_id, action, target_type, target_id, details)^
INSERT INTO moderation_actions (report_id, moderator_id, action, target_type, target_id, details)
VALUES (:report_id, :moderator_id, :action, :target_type, :target_id, :details)
RETURNING *;

-- name: report_actions(report_id)
SELECT a.*, u.username AS moderator_username
FROM moderation_actions a LEFT JOIN users u ON u.id = a.moderator_id
WHERE a.report_id = :report_id
ORDER BY a.id;

-- name: find_user(user_id, username)^
-- `nubo role USER`: by id when USER is a number, else by username (case-insensitively).
SELECT id, username, role FROM users
WHERE (:user_id::bigint IS NOT NULL AND id = :user_id::bigint)
   OR (:user_id::bigint IS NULL AND lower(username) = lower(:username::text));

-- name: set_role(user_id, role)^
UPDATE users SET role = :role, updated_at = now() WHERE id = :user_id
RETURNING id, username, role;

-- name: unsuspend_user(user_id)^
-- The suspension's date before it was lifted (NULL: the account was not suspended); no row
-- for no such user.
UPDATE users u SET suspended_at = NULL, updated_at = now()
FROM (SELECT id, suspended_at FROM users WHERE id = :user_id FOR UPDATE) AS before
WHERE u.id = before.id
RETURNING u.id, before.suspended_at;
