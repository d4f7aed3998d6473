-- name: take_event_ids(user_ids, counts)
-- Reserve counts[i] ids for user_ids[i]; returns each user's new last id. Rows are locked in
-- user id order (the ORDER BY drives the insert), so two announcing transactions cannot
-- deadlock on each other, and the locks last until commit: ids follow commit order.
INSERT INTO event_sequences (user_id, last_id)
SELECT u, n FROM unnest(:user_ids::bigint[], :counts::bigint[]) AS t(u, n) ORDER BY u
ON CONFLICT (user_id) DO UPDATE SET last_id = event_sequences.last_id + EXCLUDED.last_id
RETURNING user_id, last_id;

-- name: announce_one(user_ids, type, data, notification)!
-- The common case, one event, in one round trip: each recipient's next id (rows locked in
-- user id order, as take_event_ids does), and the outbox row.
WITH ids AS (
    INSERT INTO event_sequences (user_id, last_id)
    SELECT u, 1 FROM unnest(:user_ids::bigint[]) AS u ORDER BY u
    ON CONFLICT (user_id) DO UPDATE SET last_id = event_sequences.last_id + 1
    RETURNING user_id, last_id
)
INSERT INTO outbox (type, data, recipients, event_ids, notification)
SELECT :type, :data, array_agg(user_id ORDER BY user_id), array_agg(last_id ORDER BY user_id), :notification
  FROM ids;

-- name: insert_events*!
INSERT INTO outbox (type, data, recipients, event_ids, notification)
VALUES (:type, :data, :recipients, :event_ids, :notification);

-- name: lock_relay()!
-- One relay batch at a time across all instances: batches go out in outbox order, which for
-- any one user is event id order. The batch's commit need not wait for the disk: if it is
-- lost in a crash, the rows are still there and the batch is redone, harmlessly.
SELECT pg_advisory_xact_lock(7237599036432887809), set_config('synchronous_commit', 'off', true);

-- name: pending_batch(lim)
SELECT id, type, data, recipients, event_ids, notification, created_at
  FROM outbox ORDER BY id LIMIT :lim;

-- name: delete_batch(ids)!
DELETE FROM outbox WHERE id = ANY(:ids::bigint[]);

-- name: pending_for_user(user_id, after)
-- A user's events still waiting for the relay (MongoDB down, say): resume serves them too.
SELECT o.type, o.data, o.created_at, o.event_ids[array_position(o.recipients, :user_id::bigint)] AS id
  FROM outbox AS o
 WHERE o.recipients @> ARRAY[:user_id::bigint]
   AND o.event_ids[array_position(o.recipients, :user_id::bigint)] > :after
 ORDER BY id;

-- name: last_event_id(user_id)$
SELECT last_id FROM event_sequences WHERE user_id = :user_id;

-- name: backlog()^
SELECT count(*) AS events, min(created_at) AS oldest FROM outbox;
