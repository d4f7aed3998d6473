-- name: contacts(user_id)
-- People who share at least one conversation with the user: they see the user's presence,
-- unless a block stands between them (either way).
SELECT DISTINCT other.user_id
  FROM conversation_members AS mine
  JOIN conversation_members AS other
    ON other.conversation_id = mine.conversation_id AND other.user_id <> mine.user_id
 WHERE mine.user_id = :user_id
   AND NOT EXISTS (
       SELECT 1 FROM blocks b
        WHERE (b.blocker_id = :user_id AND b.blocked_id = other.user_id)
           OR (b.blocker_id = other.user_id AND b.blocked_id = :user_id));
