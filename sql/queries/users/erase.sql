-- Erasing an account. The rows go by ON DELETE CASCADE; these statements first take the
-- account's marks off everyone else's counters (each returns the rows it changed, whose
-- cache entries are then invalidated). They run in one transaction, after lock_user.

-- name: lock_user(user_id)$
-- Follows and unfollows of this user update its row too, so they wait for the erasure.
SELECT id FROM users WHERE id = :user_id FOR UPDATE;

-- name: uncount_follows_of(user_id)
UPDATE users u SET followers_count = u.followers_count - 1
FROM follows f
WHERE f.follower_id = :user_id AND u.id = f.followed_id
RETURNING u.id;

-- name: uncount_followers_of(user_id)
UPDATE users u SET following_count = u.following_count - 1
FROM follows f
WHERE f.followed_id = :user_id AND u.id = f.follower_id
RETURNING u.id;

-- name: uncount_likes_of(user_id)
UPDATE posts p SET like_count = p.like_count - 1
FROM post_likes l
WHERE l.user_id = :user_id AND p.id = l.post_id AND p.author_id <> :user_id
RETURNING p.id;

-- name: uncount_comments_of(user_id)
UPDATE posts p SET comment_count = p.comment_count - c.n
FROM (SELECT post_id, count(*) AS n FROM comments WHERE author_id = :user_id GROUP BY post_id) c
WHERE p.id = c.post_id AND p.author_id <> :user_id
RETURNING p.id;

-- name: post_ids_of(user_id)
SELECT id FROM posts WHERE author_id = :user_id;

-- name: delete_user(user_id)$
-- Messages stay in their conversations with sender_id NULL (ON DELETE SET NULL).
DELETE FROM users WHERE id = :user_id RETURNING id;
