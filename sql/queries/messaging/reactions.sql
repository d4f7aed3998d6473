-- Reactions on messages (one per person and emoji) and the edit history of messages.

-- name: add_reaction(message_id, user_id, emoji)$
INSERT INTO message_reactions (message_id, user_id, emoji) VALUES (:message_id, :user_id, :emoji)
ON CONFLICT DO NOTHING
RETURNING message_id;

-- name: remove_reaction(message_id, user_id, emoji)$
DELETE FROM message_reactions
WHERE message_id = :message_id AND user_id = :user_id AND emoji = :emoji
RETURNING message_id;

-- name: reaction_count(message_id, emoji)$
-- Sent with a message.reaction event (read in its transaction, after the change).
SELECT count(*) FROM message_reactions WHERE message_id = :message_id AND emoji = :emoji;

-- name: reaction_counts(message_ids, viewer_id, hidden_ids)
-- Per message and emoji: how many, whether the viewer is among them, first reaction first.
-- People a block hides from the viewer are not counted.
SELECT message_id, emoji, count(*) AS count, bool_or(user_id = :viewer_id) AS reacted_by_me
FROM message_reactions
WHERE message_id = ANY(:message_ids) AND NOT (user_id = ANY(:hidden_ids))
GROUP BY message_id, emoji
ORDER BY message_id, min(created_at), emoji;

-- name: keep_message_version(message_id)$
-- The version an edit replaces, kept in the editing transaction before the update.
INSERT INTO message_versions (message_id, body, written_at)
SELECT id, body, COALESCE(edited_at, created_at)
FROM (SELECT id, body, edited_at, created_at FROM messages
      WHERE id = :message_id AND deleted_at IS NULL FOR UPDATE) AS current
RETURNING id;

-- name: forget_deleted_message(message_id)!
-- A deleted message's text goes, its earlier versions and its reactions with it.
WITH versions AS (DELETE FROM message_versions WHERE message_id = :message_id)
DELETE FROM message_reactions WHERE message_id = :message_id;

-- name: message_versions_page(message_id, before, lim)
SELECT id, body, written_at, replaced_at FROM message_versions
WHERE message_id = :message_id AND id < :before
ORDER BY id DESC LIMIT :lim;
