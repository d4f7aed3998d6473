-- Reposts (a post shared to the reposter's followers) and quotes (a post with quote_of).

-- name: repost_post(post_id, user_id)$
-- The post's author when this repost is new, NULL when it existed already.
WITH ins AS (
    INSERT INTO reposts (post_id, user_id) VALUES (:post_id, :user_id)
    ON CONFLICT DO NOTHING
    RETURNING post_id
)
UPDATE posts SET repost_count = repost_count + 1
FROM ins WHERE posts.id = ins.post_id
RETURNING posts.author_id;

-- name: unrepost_post(post_id, user_id)$
WITH del AS (
    DELETE FROM reposts WHERE post_id = :post_id AND user_id = :user_id
    RETURNING post_id
)
UPDATE posts SET repost_count = repost_count - 1
FROM del WHERE posts.id = del.post_id
RETURNING posts.id;

-- name: reposters_page(post_id, before, lim)
-- Who reposted a post, newest repost first; keyset on the repost's id.
SELECT r.id AS repost_id, r.created_at AS reposted_at, u.id, u.username, u.display_name, u.avatar_url
FROM reposts r
JOIN users u ON u.id = r.user_id
WHERE r.post_id = :post_id AND r.id < :before
ORDER BY r.id DESC
LIMIT :lim;

-- name: all_reposted_post_ids(user_id)
-- Fills the viewer's cached set of reposted posts (index-only scan of reposts_user_idx).
SELECT post_id FROM reposts WHERE user_id = :user_id;

-- name: set_quote_of(post_id, quote_of)^
-- Makes a new post a quote; the quoted post's author and summary come back for the reply.
WITH upd AS (
    UPDATE posts SET quote_of = :quote_of WHERE id = :post_id RETURNING quote_of
)
SELECT q.id AS q_id, q.body AS q_body, q.created_at AS q_created_at, q.edited_at AS q_edited_at,
       u.id AS q_author_id, u.username AS q_username, u.display_name AS q_display_name,
       u.avatar_url AS q_avatar_url
FROM upd JOIN posts q ON q.id = upd.quote_of JOIN users u ON u.id = q.author_id;

-- name: quoting_post_ids(post_id)
-- The quotes of a post, whose cached entries embed its summary.
SELECT id FROM posts WHERE quote_of = :post_id;

-- name: edit_audience(post_id, author_id)
-- Who is told that a post changed: those who reposted or quoted it (but not its author).
SELECT user_id FROM reposts WHERE post_id = :post_id AND user_id <> :author_id
UNION
SELECT author_id FROM posts WHERE quote_of = :post_id AND author_id <> :author_id;
