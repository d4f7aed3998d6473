-- Edit history of posts: each edit keeps the version it replaced.

-- name: keep_post_version(post_id, author_id)$
-- Called in the editing transaction before the update: the current version, locked so that
-- two edits racing each keep the version the other one wrote.
INSERT INTO post_versions (post_id, body, written_at)
SELECT id, body, COALESCE(edited_at, created_at)
FROM (SELECT id, body, edited_at, created_at FROM posts
      WHERE id = :post_id AND author_id = :author_id FOR UPDATE) AS current
RETURNING id;

-- name: post_versions_page(post_id, before, lim)
SELECT id, body, written_at, replaced_at FROM post_versions
WHERE post_id = :post_id AND id < :before
ORDER BY id DESC LIMIT :lim;
