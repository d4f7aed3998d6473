-- Hashtags: written with their post, paged by tag, counted for trending.

-- name: insert_post_tags(post_id, tags)!
INSERT INTO post_tags (post_id, tag, position)
SELECT :post_id, t.tag, t.n
FROM unnest(CAST(:tags AS text[])) WITH ORDINALITY AS t (tag, n);

-- name: delete_post_tags(post_id)!
DELETE FROM post_tags WHERE post_id = :post_id;

-- name: tag_post_ids(tag, before, lim)
-- Newest first: a backward scan of the primary key (tag, post_id).
SELECT post_id AS id FROM post_tags
WHERE tag = :tag AND post_id < :before
ORDER BY post_id DESC
LIMIT :lim;

-- name: trending_tags(since, lim)
SELECT tag, count(*) AS uses
FROM post_tags
WHERE created_at > :since
GROUP BY tag
ORDER BY uses DESC, tag
LIMIT :lim;
