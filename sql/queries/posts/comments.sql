-- Comments on posts, oldest first; the post's comment_count moves in the same statement.

-- name: insert_comment(post_id, author_id, body)^
WITH c AS (
    INSERT INTO comments (post_id, author_id, body)
    VALUES (:post_id, :author_id, :body)
    RETURNING *
), p AS (
    UPDATE posts SET comment_count = comment_count + 1
    FROM c WHERE posts.id = c.post_id
    RETURNING posts.author_id AS post_author_id
)
SELECT c.id, c.post_id, c.body, c.created_at, c.updated_at, c.edited_at,
       u.id AS author_id, u.username, u.display_name, u.avatar_url, p.post_author_id
FROM c JOIN users u ON u.id = c.author_id, p;

-- name: comments_page(post_id, after, lim)
SELECT c.id, c.post_id, c.body, c.created_at, c.updated_at, c.edited_at,
       u.id AS author_id, u.username, u.display_name, u.avatar_url
FROM comments c
JOIN users u ON u.id = c.author_id
WHERE c.post_id = :post_id AND c.id > :after
ORDER BY c.id
LIMIT :lim;

-- name: comment_owners(comment_id)^
-- Who may change a comment: its author, and (for deletion) the post's author.
SELECT c.post_id, c.author_id, p.author_id AS post_author_id
FROM comments c JOIN posts p ON p.id = c.post_id
WHERE c.id = :comment_id;

-- name: update_comment(comment_id, author_id, body)^
UPDATE comments c
SET body = :body, updated_at = now(), edited_at = now()
FROM users u
WHERE c.id = :comment_id AND c.author_id = :author_id AND u.id = c.author_id
RETURNING c.id, c.post_id, c.body, c.created_at, c.updated_at, c.edited_at,
          u.id AS author_id, u.username, u.display_name, u.avatar_url;

-- name: delete_comment(comment_id)$
WITH d AS (DELETE FROM comments WHERE id = :comment_id RETURNING post_id)
UPDATE posts SET comment_count = comment_count - 1
FROM d WHERE posts.id = d.post_id
RETURNING posts.id;
