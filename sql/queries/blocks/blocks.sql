-- Blocks and mutes: the rows, the lists, and the questions the other domains ask
-- ("is there a block between these two?", "who among these must not hear from X?").

-- name: insert_block(blocker_id, blocked_id)$
-- 1 when the block is new, NULL when it already existed.
INSERT INTO blocks (blocker_id, blocked_id) VALUES (:blocker_id, :blocked_id)
ON CONFLICT DO NOTHING
RETURNING 1;

-- name: delete_block(blocker_id, blocked_id)$
DELETE FROM blocks WHERE blocker_id = :blocker_id AND blocked_id = :blocked_id RETURNING 1;

-- name: blocks_page(user_id, before, lim)
SELECT b.id AS block_id, b.created_at AS blocked_at,
       u.id, u.username, u.display_name, u.avatar_url
FROM blocks b JOIN users u ON u.id = b.blocked_id
WHERE b.blocker_id = :user_id AND b.id < :before
ORDER BY b.id DESC LIMIT :lim;

-- name: hidden_user_ids(user_id)
-- Everyone a block stands between the user and: those they blocked and those who blocked them.
SELECT blocked_id AS id FROM blocks WHERE blocker_id = :user_id
UNION
SELECT blocker_id FROM blocks WHERE blocked_id = :user_id;

-- name: blocked_between(user_id, other_id)$
SELECT EXISTS (
    SELECT 1 FROM blocks
    WHERE (blocker_id = :user_id AND blocked_id = :other_id)
       OR (blocker_id = :other_id AND blocked_id = :user_id)
);

-- name: blocked_among(user_id, user_ids)
-- Which of user_ids a block stands between user_id and (either way).
SELECT u AS id FROM unnest(CAST(:user_ids AS bigint[])) AS u
WHERE EXISTS (
    SELECT 1 FROM blocks
    WHERE (blocker_id = :user_id AND blocked_id = u) OR (blocker_id = u AND blocked_id = :user_id)
);

-- name: silenced_among(actor_id, user_ids)
-- Which of user_ids must not be notified of what actor_id did: a block either way, or they
-- muted the actor.
SELECT u AS id FROM unnest(CAST(:user_ids AS bigint[])) AS u
WHERE EXISTS (
    SELECT 1 FROM blocks
    WHERE (blocker_id = :actor_id AND blocked_id = u) OR (blocker_id = u AND blocked_id = :actor_id)
) OR EXISTS (
    SELECT 1 FROM mutes WHERE muter_id = u AND muted_id = :actor_id
);

-- name: insert_mute(muter_id, muted_id)$
INSERT INTO mutes (muter_id, muted_id) VALUES (:muter_id, :muted_id)
ON CONFLICT DO NOTHING
RETURNING 1;

-- name: delete_mute(muter_id, muted_id)$
DELETE FROM mutes WHERE muter_id = :muter_id AND muted_id = :muted_id RETURNING 1;

-- name: mutes_page(user_id, before, lim)
SELECT m.id AS mute_id, m.created_at AS muted_at,
       u.id, u.username, u.display_name, u.avatar_url
FROM mutes m JOIN users u ON u.id = m.muted_id
WHERE m.muter_id = :user_id AND m.id < :before
ORDER BY m.id DESC LIMIT :lim;

-- name: muted_user_ids(user_id)
SELECT muted_id AS id FROM mutes WHERE muter_id = :user_id;
