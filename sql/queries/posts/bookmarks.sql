-- Bookmarks: a person's private list of saved posts, newest bookmark first.

-- name: bookmark_post(user_id, post_id)$
-- The new bookmark's id; NULL when the post was bookmarked already.
INSERT INTO post_bookmarks (user_id, post_id) VALUES (:user_id, :post_id)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: unbookmark_post(user_id, post_id)$
DELETE FROM post_bookmarks WHERE user_id = :user_id AND post_id = :post_id RETURNING id;

-- name: bookmark_page(user_id, before, lim)
-- Keyset on the bookmark's id (post_bookmarks_user_idx, index-only).
SELECT id, post_id FROM post_bookmarks
WHERE user_id = :user_id AND id < :before
ORDER BY id DESC LIMIT :lim;

-- name: all_bookmarked_post_ids(user_id)
-- Fills the viewer's cached set of bookmarked posts (index-only scan of post_bookmarks_user_idx).
SELECT post_id FROM post_bookmarks WHERE user_id = :user_id;
