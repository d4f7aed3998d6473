-- Link preview cards: the per-URL cache, and the card copied onto a post.

-- name: preview_by_url(url)^
SELECT id, url, ok, title, description, storage_key IS NOT NULL AS has_image, fetched_at
FROM link_previews WHERE url = :url;

-- name: store_preview(url, ok, title, description, content_type, storage_key, etag)^
-- A fresh fetch replaces a stale one; the stale one's image file is queued for the collector
-- (an update fires no delete trigger).
WITH old AS (
    SELECT storage_key FROM link_previews WHERE url = :url AND storage_key IS NOT NULL FOR UPDATE
), queued AS (
    INSERT INTO media_garbage (storage_key) SELECT storage_key FROM old
    ON CONFLICT DO NOTHING
)
INSERT INTO link_previews (url, ok, title, description, content_type, storage_key, etag)
VALUES (:url, :ok, :title, :description, :content_type, :storage_key, :etag)
ON CONFLICT (url) DO UPDATE
SET ok = EXCLUDED.ok, title = EXCLUDED.title, description = EXCLUDED.description,
    content_type = EXCLUDED.content_type, storage_key = EXCLUDED.storage_key,
    etag = EXCLUDED.etag, fetched_at = now()
RETURNING id, url, ok, title, description, storage_key IS NOT NULL AS has_image, fetched_at;

-- name: preview_image(preview_id)^
SELECT content_type, storage_key, etag FROM link_previews
WHERE id = :preview_id AND storage_key IS NOT NULL;

-- name: set_post_preview(post_id, url, preview)^
-- Gives a post the card of its first link (url; NULL with no link, and no card). Nothing
-- (NULL) when the post is gone, was edited to another first link meanwhile, or has this card.
UPDATE posts SET preview = CAST(:preview AS jsonb)
WHERE id = :post_id
  AND (CAST(:url AS text) IS NULL OR strpos(body, :url) > 0)
  AND preview IS DISTINCT FROM CAST(:preview AS jsonb)
RETURNING author_id;

-- name: set_message_preview(message_id, url, preview)^
-- As set_post_preview, for a message (not once deleted); the message as messages.sql reads it.
UPDATE messages SET preview = CAST(:preview AS jsonb)
WHERE id = :message_id AND deleted_at IS NULL
  AND (CAST(:url AS text) IS NULL OR strpos(body, :url) > 0)
  AND preview IS DISTINCT FROM CAST(:preview AS jsonb)
RETURNING id, conversation_id, sender_id, client_id, body, created_at, edited_at, deleted_at, preview;
