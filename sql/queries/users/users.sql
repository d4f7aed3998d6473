-- Public profiles and follows. Follow counters move in the same statement as the follow row.

-- name: get_profile(user_id)^
SELECT id, username, display_name, bio, avatar_url, created_at,
       followers_count, following_count, posts_count
FROM users WHERE id = :user_id;

-- name: user_id_by_username(username)$
SELECT id FROM users WHERE lower(username) = lower(:username);

-- name: user_exists(user_id)$
SELECT EXISTS (SELECT 1 FROM users WHERE id = :user_id);

-- name: is_following(follower_id, followed_id)$
SELECT EXISTS (
    SELECT 1 FROM follows WHERE follower_id = :follower_id AND followed_id = :followed_id
);

-- name: lock_user_pair(user_id, other_id)
-- Both users' rows, in id order, taken first by everything that changes what lies between two
-- people: a follow, an unfollow, a block (blocks/service.py). The follow's counter update may
-- lock them in whatever order its plan visits them (a sequential scan goes by where the rows
-- lie on disk, which updates change), so crossed follows could deadlock without it; and a
-- follow racing a block waits for it, so it either is undone by the block or sees it and is
-- refused. NO KEY UPDATE: these writes change no key, and posts or likes being inserted
-- meanwhile (their foreign keys take KEY SHARE on the same rows) need not wait.
SELECT id FROM users
WHERE id = ANY (ARRAY[:user_id, :other_id]::bigint[])
ORDER BY id FOR NO KEY UPDATE;

-- name: follow(follower_id, followed_id)$
-- 1 when the follow is new, NULL when it already existed (after lock_user_pair).
WITH ins AS (
    INSERT INTO follows (follower_id, followed_id) VALUES (:follower_id, :followed_id)
    ON CONFLICT DO NOTHING
    RETURNING follower_id, followed_id
), bumped AS (
    UPDATE users
    SET following_count = following_count + (users.id = ins.follower_id)::int,
        followers_count = followers_count + (users.id = ins.followed_id)::int
    FROM ins WHERE users.id = ANY (ARRAY[ins.follower_id, ins.followed_id])
    RETURNING users.id
)
SELECT 1 FROM ins;  -- `bumped` runs whether or not it is read

-- name: unfollow(follower_id, followed_id)$
WITH del AS (
    DELETE FROM follows WHERE follower_id = :follower_id AND followed_id = :followed_id
    RETURNING follower_id, followed_id
), dropped AS (
    UPDATE users
    SET following_count = following_count - (users.id = del.follower_id)::int,
        followers_count = followers_count - (users.id = del.followed_id)::int
    FROM del WHERE users.id = ANY (ARRAY[del.follower_id, del.followed_id])
    RETURNING users.id
)
SELECT 1 FROM del;

-- name: followers_page(user_id, before, lim)
SELECT f.id AS follow_id, f.created_at AS followed_at,
       u.id, u.username, u.display_name, u.avatar_url
FROM follows f JOIN users u ON u.id = f.follower_id
WHERE f.followed_id = :user_id AND f.id < :before
ORDER BY f.id DESC LIMIT :lim;

-- name: following_page(user_id, before, lim)
SELECT f.id AS follow_id, f.created_at AS followed_at,
       u.id, u.username, u.display_name, u.avatar_url
FROM follows f JOIN users u ON u.id = f.followed_id
WHERE f.follower_id = :user_id AND f.id < :before
ORDER BY f.id DESC LIMIT :lim;

-- name: ids_by_usernames(usernames)
-- Users named (case-insensitively) in a post or comment; unknown names are simply absent.
SELECT id FROM users WHERE lower(username) = ANY(:usernames::text[]);
