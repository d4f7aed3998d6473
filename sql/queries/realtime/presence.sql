-- name: contacts(user_id)
-- Who is told when the user comes online or goes offline: the other members of conversations
-- the user has written in (a message, even one deleted since), unless a block stands between
-- them (either way). Writing is the consent: opening a direct conversation with someone, or
-- putting them in a group, does not make their presence yours to watch until they answer.
SELECT DISTINCT other.user_id
  FROM conversation_members AS mine
  JOIN conversation_members AS other
    ON other.conversation_id = mine.conversation_id AND other.user_id <> mine.user_id
 WHERE mine.user_id = :user_id
   AND EXISTS (
       SELECT 1 FROM messages AS m
        WHERE m.sender_id = :user_id AND m.conversation_id = mine.conversation_id)
   AND NOT EXISTS (
       SELECT 1 FROM blocks b
        WHERE (b.blocker_id = :user_id AND b.blocked_id = other.user_id)
           OR (b.blocker_id = other.user_id AND b.blocked_id = :user_id));
