-- Posts: one row as the API shows it (author joined), the id lists that pages are made of,
-- and the writes, each one statement so that its counter moves in the same transaction.

-- name: posts_by_ids(ids)
-- Hydrates a page (or one post) from ids; callers keep their own order.
-- A quote carries the quoted post's summary (q_*), absent when that post was deleted.
SELECT p.id, p.body, p.media_urls, p.like_count, p.comment_count,
       p.created_at, p.updated_at, p.edited_at,
       u.id AS author_id, u.username, u.display_name, u.avatar_url,
       ARRAY(SELECT t.tag FROM post_tags t WHERE t.post_id = p.id ORDER BY t.position) AS tags,
       p.repost_count, p.quote_of, p.preview,
       q.id AS q_id, q.body AS q_body, q.created_at AS q_created_at, q.edited_at AS q_edited_at,
       qu.id AS q_author_id, qu.username AS q_username, qu.display_name AS q_display_name,
       qu.avatar_url AS q_avatar_url
FROM posts p
JOIN users u ON u.id = p.author_id
LEFT JOIN posts q ON q.id = p.quote_of
LEFT JOIN users qu ON qu.id = q.author_id
WHERE p.id = ANY(:ids);

-- name: recent_post_ids(before, lim)
-- GET /posts: newest first, strictly before the cursor (backward scan of the primary key).
SELECT id FROM posts WHERE id < :before ORDER BY id DESC LIMIT :lim;

-- name: user_post_ids(author_id, before, lim)
SELECT id FROM posts
WHERE author_id = :author_id AND id < :before
ORDER BY id DESC LIMIT :lim;

-- name: feed_post_ids(user_id, before, lim)
-- The user's own posts and reposts and those of the people they follow (but muted), newest
-- first. A post ranks by its own id or its newest repost's id here (one sequence, so one
-- order in time) and shows once, however many of them reposted it. One bounded index scan
-- per author and per reposter (LATERAL ... LIMIT), so the cost is follows x limit, not the
-- authors' whole history. (A block removes follows both ways: no blocked author is here.)
-- :before is the last post of the previous page: the page continues below the rank that
-- post has in this feed.
WITH a AS MATERIALIZED (
    SELECT f.followed_id AS author_id FROM follows f
    WHERE f.follower_id = :user_id
      AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = :user_id AND m.muted_id = f.followed_id)
    UNION ALL
    SELECT CAST(:user_id AS bigint)
), muting AS (
    SELECT EXISTS (SELECT 1 FROM mutes WHERE muter_id = :user_id) AS any_muted
), bound AS (
    SELECT GREATEST(CAST(:before AS bigint),
                    (SELECT max(r.id) FROM reposts r JOIN a ON a.author_id = r.user_id
                     WHERE r.post_id = :before)) AS rank
), reposted AS MATERIALIZED (
    -- Each reposted post once, at its newest repost's rank. Only the reposts are grouped (a
    -- few hundred rows): grouping every candidate, posts included, cost more than both scans.
    SELECT r.post_id, max(r.id) AS rank
    FROM a CROSS JOIN LATERAL (
        SELECT id, post_id FROM reposts
        WHERE reposts.user_id = a.author_id AND reposts.id < (SELECT rank FROM bound)
          -- not a post by someone the user muted (probed only when they muted anyone)
          AND (NOT (SELECT any_muted FROM muting)
               OR NOT EXISTS (SELECT 1 FROM posts p2 JOIN mutes m ON m.muted_id = p2.author_id
                              WHERE p2.id = reposts.post_id AND m.muter_id = :user_id))
        ORDER BY id DESC LIMIT :lim
    ) AS r
    GROUP BY r.post_id
), entries AS (
    -- A post that was also reposted ranks by its repost (a repost's id is always the larger):
    -- its own entry is dropped (one hashed lookup), so every post is here once.
    SELECT p.id AS post_id, p.id AS rank
    FROM a CROSS JOIN LATERAL (
        SELECT id FROM posts
        WHERE posts.author_id = a.author_id AND posts.id < (SELECT rank FROM bound)
        ORDER BY id DESC LIMIT :lim
    ) AS p
    WHERE p.id NOT IN (SELECT post_id FROM reposted)
    UNION ALL
    SELECT post_id, rank FROM reposted
)
SELECT c.post_id AS id
FROM (
    SELECT e.post_id, e.rank FROM entries e
    ORDER BY e.rank DESC
    -- OFFSET 0 keeps the check below out of this subquery: it runs on candidates in rank
    -- order until the page is full, not on every candidate.
    OFFSET 0
) AS c
-- Not shown on an earlier page already, at a newer repost's rank. A scalar subquery, not
-- NOT EXISTS, so that it stays one probe of reposts_post_idx per row (never hashed over
-- every repost newer than the cursor).
WHERE (SELECT r.id FROM reposts r
       WHERE r.post_id = c.post_id AND r.id >= (SELECT rank FROM bound)
         AND r.user_id IN (SELECT author_id FROM a)
       LIMIT 1) IS NULL
ORDER BY c.rank DESC
LIMIT :lim;

-- name: post_author_id(post_id)$
SELECT author_id FROM posts WHERE id = :post_id;

-- name: insert_post(author_id, body, media_urls)^
WITH p AS (
    INSERT INTO posts (author_id, body, media_urls)
    VALUES (:author_id, :body, :media_urls)
    RETURNING *
), u AS (
    UPDATE users SET posts_count = posts_count + 1
    WHERE id = :author_id
    RETURNING id, username, display_name, avatar_url
)
SELECT p.id, p.body, p.media_urls, p.like_count, p.comment_count,
       p.created_at, p.updated_at, p.edited_at,
       u.id AS author_id, u.username, u.display_name, u.avatar_url
FROM p, u;

-- name: update_post(post_id, author_id, body, media_urls)^
-- NULL leaves a field as it is (PATCH).
UPDATE posts p
SET body = COALESCE(:body, p.body),
    media_urls = COALESCE(:media_urls, p.media_urls),
    updated_at = now(),
    edited_at = now()
FROM users u
WHERE p.id = :post_id AND p.author_id = :author_id AND u.id = p.author_id
RETURNING p.id, p.body, p.media_urls, p.like_count, p.comment_count,
          p.created_at, p.updated_at, p.edited_at,
          u.id AS author_id, u.username, u.display_name, u.avatar_url;

-- name: delete_post(post_id, author_id)$
-- Comments and likes go with it (ON DELETE CASCADE).
WITH d AS (
    DELETE FROM posts WHERE id = :post_id AND author_id = :author_id RETURNING author_id
)
UPDATE users SET posts_count = posts_count - 1
FROM d WHERE users.id = d.author_id
RETURNING users.id;

-- name: like_post(post_id, user_id)$
-- The post's author when this like is new, NULL when it already existed.
WITH ins AS (
    INSERT INTO post_likes (post_id, user_id) VALUES (:post_id, :user_id)
    ON CONFLICT DO NOTHING
    RETURNING post_id
)
UPDATE posts SET like_count = like_count + 1
FROM ins WHERE posts.id = ins.post_id
RETURNING posts.author_id;

-- name: unlike_post(post_id, user_id)$
WITH del AS (
    DELETE FROM post_likes WHERE post_id = :post_id AND user_id = :user_id
    RETURNING post_id
)
UPDATE posts SET like_count = like_count - 1
FROM del WHERE posts.id = del.post_id
RETURNING posts.id;

-- name: viewer_post_states(user_id, ids)
-- The viewer's part of a page when Redis is away: which of these posts they liked, reposted,
-- bookmarked (three index probes per post, from the viewer: post_likes_user_idx,
-- reposts_pair_key, post_bookmarks_pair_key).
SELECT i.post_id,
       EXISTS (SELECT 1 FROM post_likes l WHERE l.user_id = :user_id AND l.post_id = i.post_id) AS liked,
       EXISTS (SELECT 1 FROM reposts r WHERE r.post_id = i.post_id AND r.user_id = :user_id) AS reposted,
       EXISTS (SELECT 1 FROM post_bookmarks b WHERE b.user_id = :user_id AND b.post_id = i.post_id) AS bookmarked
FROM unnest(CAST(:ids AS bigint[])) AS i (post_id);

-- name: all_liked_post_ids(user_id)
-- Fills the viewer's cached set of liked posts (index-only scan of post_likes_user_idx).
SELECT post_id FROM post_likes WHERE user_id = :user_id;
