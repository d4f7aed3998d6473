-- Who liked a post, most recent first, strictly after the cursor (created_at, user_id).

-- name: likers_page(post_id, before_at, before_user, lim)
SELECT l.created_at AS liked_at, u.id, u.username, u.display_name, u.avatar_url
FROM post_likes l
JOIN users u ON u.id = l.user_id
WHERE l.post_id = :post_id AND (l.created_at, l.user_id) < (:before_at, :before_user)
ORDER BY l.created_at DESC, l.user_id DESC
LIMIT :lim;
