-- name: existing_user_ids(user_ids)
-- Which of these ids are real users.
SELECT id FROM users WHERE id = ANY(:user_ids::bigint[]);

-- name: insert_direct(direct_key, created_by)$
-- One direct conversation per pair: a second insert for the same pair returns nothing.
INSERT INTO conversations (kind, direct_key, created_by)
VALUES ('direct', :direct_key, :created_by)
ON CONFLICT (direct_key) DO NOTHING
RETURNING id;

-- name: direct_by_key(direct_key)$
SELECT id FROM conversations WHERE direct_key = :direct_key;

-- name: insert_group(title, created_by)$
INSERT INTO conversations (kind, title, created_by)
VALUES ('group', :title, :created_by)
RETURNING id;

-- name: add_members(conversation_id, user_ids, role)
-- Returns the ids actually added (already-present members are left as they are).
INSERT INTO conversation_members (conversation_id, user_id, role)
SELECT :conversation_id, uid, :role FROM unnest(:user_ids::bigint[]) AS uid
ON CONFLICT DO NOTHING
RETURNING user_id;

-- name: membership(conversation_id, user_id)^
-- The conversation (if it exists) and the caller's role in it (NULL when not a member).
SELECT c.id, c.kind, m.role
FROM conversations c
LEFT JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = :user_id
WHERE c.id = :conversation_id;

-- name: lock_membership(conversation_id, user_id)^
-- Same as membership, holding the member row until the transaction ends.
SELECT c.id, c.kind, m.role
FROM conversations c
LEFT JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = :user_id
WHERE c.id = :conversation_id
FOR UPDATE OF c;

-- name: conversation_by_id(conversation_id)^
SELECT id, kind, title, created_by, created_at, last_activity, last_message_id
FROM conversations
WHERE id = :conversation_id;

-- name: conversation_members(conversation_id)
SELECT m.user_id, u.username, u.display_name, u.avatar_url, m.role, m.joined_at,
       m.last_read_message_id
FROM conversation_members m
JOIN users u ON u.id = m.user_id
WHERE m.conversation_id = :conversation_id
ORDER BY m.joined_at, m.user_id;

-- name: member_ids(conversation_id)
SELECT user_id FROM conversation_members WHERE conversation_id = :conversation_id;

-- name: remove_member(conversation_id, user_id)^
DELETE FROM conversation_members
WHERE conversation_id = :conversation_id AND user_id = :user_id
RETURNING role;

-- name: promote_oldest_member(conversation_id)!
-- A group that loses its last owner hands ownership to its longest-standing member.
UPDATE conversation_members
SET role = 'owner'
WHERE (conversation_id, user_id) = (
        SELECT conversation_id, user_id FROM conversation_members
        WHERE conversation_id = :conversation_id
        ORDER BY joined_at, user_id
        LIMIT 1)
  AND NOT EXISTS (
        SELECT 1 FROM conversation_members
        WHERE conversation_id = :conversation_id AND role = 'owner');

-- name: list_conversations(user_id, hidden_ids, before_activity, before_id, limit)
-- The caller's conversations, most recent activity first, with the last message and the
-- number of others' messages after the caller's read marker; in a group, not counting those
-- of hidden_ids (people on the other side of a block, whose messages the caller never sees).
SELECT c.id, c.kind, c.title, c.created_at, c.last_activity, m.last_read_message_id,
       ARRAY(SELECT cm.user_id FROM conversation_members cm
             WHERE cm.conversation_id = c.id ORDER BY cm.user_id) AS member_ids,
       lm.id AS lm_id, lm.sender_id AS lm_sender_id, lm.body AS lm_body,
       lm.created_at AS lm_created_at, lm.edited_at AS lm_edited_at, lm.deleted_at AS lm_deleted_at,
       (SELECT count(*) FROM messages x
        WHERE x.conversation_id = c.id
          AND x.id > coalesce(m.last_read_message_id, 0)
          AND x.sender_id IS DISTINCT FROM :user_id
          AND x.deleted_at IS NULL
          AND (c.kind <> 'group' OR x.sender_id IS NULL
               OR x.sender_id <> ALL(:hidden_ids::bigint[]))) AS unread_count
FROM conversation_members m
JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN messages lm ON lm.id = c.last_message_id
WHERE m.user_id = :user_id
  AND (:before_activity::timestamptz IS NULL
       OR (c.last_activity, c.id) < (:before_activity::timestamptz, :before_id::bigint))
ORDER BY c.last_activity DESC, c.id DESC
LIMIT :limit;

-- name: lock_conversation(conversation_id)!
-- Adds to one group one at a time, so its size is checked against what others added.
SELECT 1 FROM conversations WHERE id = :conversation_id FOR UPDATE;

-- name: member_count(conversation_id)$
SELECT count(*) FROM conversation_members WHERE conversation_id = :conversation_id;
