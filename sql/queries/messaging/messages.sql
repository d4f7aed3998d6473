-- name: insert_message(conversation_id, sender_id, client_id, body)^
-- A retry with the same (sender, client_id) inserts nothing and returns nothing.
INSERT INTO messages (conversation_id, sender_id, client_id, body)
VALUES (:conversation_id, :sender_id, :client_id, :body)
ON CONFLICT (sender_id, client_id) DO NOTHING
RETURNING id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview;

-- name: message_by_client_id(sender_id, client_id)^
SELECT id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview
FROM messages
WHERE sender_id = :sender_id AND client_id = :client_id;

-- name: touch_conversation(conversation_id, message_id, at)!
UPDATE conversations
SET last_message_id = :message_id, last_activity = :at
WHERE id = :conversation_id AND (last_message_id IS NULL OR last_message_id < :message_id);

-- name: message_by_id(message_id)^
SELECT id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview
FROM messages
WHERE id = :message_id;

-- name: list_messages(conversation_id, before_id, limit)
-- Newest first; keyset on id so that pages stay stable while messages arrive.
SELECT id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview
FROM messages
WHERE conversation_id = :conversation_id
  AND (:before_id::bigint IS NULL OR id < :before_id::bigint)
ORDER BY id DESC
LIMIT :limit;

-- name: edit_message(message_id, body)^
UPDATE messages
SET body = :body, edited_at = now()
WHERE id = :message_id AND deleted_at IS NULL
RETURNING id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview;

-- name: delete_message(message_id)^
-- The row stays as a tombstone (ids and read markers keep their meaning); the text goes.
UPDATE messages
SET body = '', deleted_at = now(), preview = NULL
WHERE id = :message_id AND deleted_at IS NULL
RETURNING id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview;

-- name: advance_read_marker(conversation_id, user_id, message_id)$
-- Read markers only move forward.
UPDATE conversation_members
SET last_read_message_id = :message_id
WHERE conversation_id = :conversation_id AND user_id = :user_id
  AND (last_read_message_id IS NULL OR last_read_message_id < :message_id)
RETURNING last_read_message_id;
