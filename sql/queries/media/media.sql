-- Media: uploads, what posts and messages show of them, attachment, and the file collector.

-- name: insert_media(owner_id, content_type, width, height, size_bytes, blurhash, storage_key, etag, thumb_key, thumb_etag, thumb_width, thumb_height)^
INSERT INTO media (owner_id, content_type, width, height, size_bytes, blurhash,
                   storage_key, etag, thumb_key, thumb_etag, thumb_width, thumb_height)
VALUES (:owner_id, :content_type, :width, :height, :size_bytes, :blurhash,
        :storage_key, :etag, :thumb_key, :thumb_etag, :thumb_width, :thumb_height)
RETURNING id, kind, content_type, width, height, size_bytes, blurhash, thumb_width, thumb_height;

-- name: media_for_serving(media_id)^
-- Who may read it: the owner while unattached, anyone for a post's, members for a message's;
-- the parent's author or sender too, since a block that hides them hides their media.
SELECT m.owner_id, m.post_id, m.content_type, m.storage_key, m.etag, m.thumb_key, m.thumb_etag,
       msg.conversation_id, msg.sender_id, p.author_id
FROM media m
LEFT JOIN messages msg ON msg.id = m.message_id
LEFT JOIN posts p ON p.id = m.post_id
WHERE m.id = :media_id;

-- name: attach_to_post(owner_id, post_id, ids)
-- Only the owner's unattached media; the order of ids is the order shown. Rows locked by a
-- concurrent attach are re-checked after it commits, so an id lands on one post only.
UPDATE media
SET post_id = :post_id, position = array_position(CAST(:ids AS bigint[]), id), attached_at = now()
WHERE id = ANY(:ids) AND owner_id = :owner_id AND post_id IS NULL AND message_id IS NULL
RETURNING id, kind, content_type, width, height, size_bytes, blurhash, thumb_width, thumb_height, position;

-- name: attach_to_message(owner_id, message_id, ids)
UPDATE media
SET message_id = :message_id, position = array_position(CAST(:ids AS bigint[]), id), attached_at = now()
WHERE id = ANY(:ids) AND owner_id = :owner_id AND post_id IS NULL AND message_id IS NULL
RETURNING id, kind, content_type, width, height, size_bytes, blurhash, thumb_width, thumb_height, position;

-- name: media_states(ids)
-- Why an attach matched fewer rows than asked: each id's owner and parent, if it exists.
SELECT id, owner_id, post_id, message_id FROM media WHERE id = ANY(:ids);

-- name: media_of_posts(post_ids)
SELECT post_id AS parent_id, id, kind, content_type, width, height, size_bytes, blurhash,
       thumb_width, thumb_height
FROM media
WHERE post_id = ANY(:post_ids)
ORDER BY post_id, position;

-- name: media_of_messages(message_ids)
SELECT message_id AS parent_id, id, kind, content_type, width, height, size_bytes, blurhash,
       thumb_width, thumb_height
FROM media
WHERE message_id = ANY(:message_ids)
ORDER BY message_id, position;

-- name: delete_for_post(post_id)!
-- The files are queued by the trigger (media_garbage) and removed after the commit.
DELETE FROM media WHERE post_id = :post_id;

-- name: delete_for_message(message_id)!
DELETE FROM media WHERE message_id = :message_id;

-- name: delete_unattached(before, lim)$
-- The sweep: uploads nobody attached in time. Returns how many went.
WITH gone AS (
    DELETE FROM media
    WHERE id IN (
        SELECT id FROM media
        WHERE post_id IS NULL AND message_id IS NULL AND created_at < :before
        ORDER BY created_at
        LIMIT :lim
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: garbage_batch(lim)
-- Keys whose rows are gone; a collector on another instance skips those being handled.
SELECT storage_key FROM media_garbage ORDER BY queued_at LIMIT :lim FOR UPDATE SKIP LOCKED;

-- name: forget_garbage(keys)!
DELETE FROM media_garbage WHERE storage_key = ANY(:keys);
