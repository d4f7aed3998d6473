-- "Who liked this post", most recent first (GET /posts/{id}/likes): one index range scan per
-- page, keyed by (created_at, user_id) so that likes made in the same microsecond still have
-- a strict order. Likes are small and the table is new, so a plain (locking) CREATE INDEX is
-- fine here; on a large live table it would be CREATE INDEX CONCURRENTLY outside a transaction.
CREATE INDEX post_likes_recent_idx ON post_likes (post_id, created_at DESC, user_id DESC);
