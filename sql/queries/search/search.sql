-- Search: people by username and display name, posts by full text. Both ranked, both paged
-- by keyset over (rank, id).

-- name: search_users(q, after_rank, after_id, lim)
-- Rank 0: the username itself; 1: a username starting with q; 2: a display-name word
-- starting with q; 3: q anywhere else. LIKE wildcards in q are escaped: they are text.
WITH q AS (
    SELECT fold_text(CAST(:q AS text)) AS text,
           replace(replace(replace(fold_text(CAST(:q AS text)), '\', '\\'), '%', '\%'), '_', '\_') AS pattern
), matches AS (
    SELECT u.id, u.username, u.display_name, u.avatar_url,
           CASE
               WHEN lower(u.username) = q.text THEN 0
               WHEN lower(u.username) LIKE q.pattern || '%' THEN 1
               WHEN fold_text(u.display_name) LIKE q.pattern || '%'
                 OR fold_text(u.display_name) LIKE '% ' || q.pattern || '%' THEN 2
               ELSE 3
           END AS rank
    FROM users u, q
    WHERE fold_text(u.username || ' ' || u.display_name) LIKE '%' || q.pattern || '%'
)
SELECT * FROM matches
WHERE (rank, id) > (:after_rank, :after_id)
ORDER BY rank, id
LIMIT :lim;

-- name: search_post_ids(q, after_rank, after_id, lim)
-- plainto_tsquery takes q as words only: & | ! :* ( ) are ignored as operators, and text of
-- nothing but punctuation is an empty query that matches no post. Best match first (rank
-- descending), then newest.
WITH q AS (
    SELECT plainto_tsquery('simple', fold_text(CAST(:q AS text))) AS query
), matches AS (
    SELECT p.id, ts_rank_cd(p.search, q.query) AS rank
    FROM posts p, q
    WHERE p.search @@ q.query
)
SELECT id, rank FROM matches
WHERE (rank, id) < (CAST(:after_rank AS real), :after_id)
ORDER BY rank DESC, id DESC
LIMIT :lim;
