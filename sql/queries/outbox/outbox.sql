-- name: take_event_ids(user_ids, counts)
-- Reserve counts[i] ids for user_ids[i]; returns each user's new last id. Rows are locked in
-- user id order (the ORDER BY drives the insert), so two announcing transactions cannot
-- deadlock on each other, and the locks last until commit: ids follow commit order.
INSERT INTO event_sequences (user_id, last_id)
SELECT u, n FROM unnest(:user_ids::bigint[], :counts::bigint[]) AS t(u, n) ORDER BY u
ON CONFLICT (user_id) DO UPDATE SET last_id = event_sequences.last_id + EXCLUDED.last_id
RETURNING user_id, last_id;

-- name: announce_one(user_ids, type, data, notification, lanes, row_max, trace_context)!
-- The common case, one event, in one round trip: each recipient's next id (rows locked in
-- user id order, as take_event_ids does), and the outbox rows: one per lane its recipients
-- fall in (user id % lanes), split into pieces of at most row_max recipients. trace_context:
-- the announcing request's traceparent (tracing on), else NULL.
WITH ids AS (
    INSERT INTO event_sequences (user_id, last_id)
    SELECT u, 1 FROM unnest(:user_ids::bigint[]) AS u ORDER BY u
    ON CONFLICT (user_id) DO UPDATE SET last_id = event_sequences.last_id + 1
    RETURNING user_id, last_id
), placed AS (
    SELECT user_id, last_id, user_id % :lanes AS lane,
           (row_number() OVER (PARTITION BY user_id % :lanes ORDER BY user_id) - 1) / :row_max AS piece
      FROM ids
)
INSERT INTO outbox (type, data, recipients, event_ids, notification, lane, trace_context)
SELECT :type, :data, array_agg(user_id ORDER BY user_id), array_agg(last_id ORDER BY user_id),
       :notification, lane, :trace_context
  FROM placed GROUP BY lane, piece ORDER BY lane, piece;

-- name: insert_events*!
INSERT INTO outbox (type, data, recipients, event_ids, notification, lane, trace_context)
VALUES (:type, :data, :recipients, :event_ids, :notification, :lane, :trace_context);

-- name: announce_to_audience(author_id, type, data, lane, trace_context)!
-- A live-only event for an author's followers: one row, whatever their number.
INSERT INTO outbox (type, data, recipients, event_ids, lane, audience_of, trace_context)
VALUES (:type, :data, '{}', '{}', :lane, :author_id, :trace_context);

-- name: lock_lane(lane)$
-- This lane's batches one at a time across all instances (other lanes run meanwhile). Shared
-- with the single lock relays took before lanes, so that during a rolling upgrade an old
-- relay and the new ones never run at once. The batch's commit need not wait for the disk:
-- if it is lost in a crash, the rows are still there and the batch is redone, harmlessly.
SELECT pg_try_advisory_xact_lock_shared(7237599036432887809)
   AND pg_try_advisory_xact_lock(1853187695, :lane)
   AND set_config('synchronous_commit', 'off', true) = 'off';

-- name: wait_for_lane(lane)!
-- lock_lane, waiting for the lane instead of skipping it (drain: hand everything over).
SELECT pg_advisory_xact_lock_shared(7237599036432887809), pg_advisory_xact_lock(1853187695, :lane),
       set_config('synchronous_commit', 'off', true);

-- name: pending_lane(lane, lim)
SELECT id, type, data, recipients, event_ids, notification, created_at, audience_of, audience_after,
       trace_context
  FROM outbox WHERE lane = :lane ORDER BY id LIMIT :lim;

-- name: lanes_waiting()
-- Lanes with rows, for relays started with fewer lanes than the rows were written with.
SELECT DISTINCT lane FROM outbox;

-- name: delete_batch(ids)!
DELETE FROM outbox WHERE id = ANY(:ids::bigint[]);

-- name: audience_advanced(id, after)!
UPDATE outbox SET audience_after = :after WHERE id = :id;

-- name: audience_page(author_id, after, lim)
-- The next piece of an author's audience, by follow id: followers, less those who muted the
-- author (their feeds do not show the post either).
SELECT f.id AS follow_id, f.follower_id
  FROM follows f
 WHERE f.followed_id = :author_id AND f.id > :after
   AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = f.follower_id AND m.muted_id = :author_id)
 ORDER BY f.id LIMIT :lim;

-- name: set_aside(id, reason)!
WITH moved AS (DELETE FROM outbox WHERE id = :id RETURNING *)
INSERT INTO outbox_set_aside (id, type, data, recipients, event_ids, notification, created_at,
                              lane, audience_of, audience_after, reason)
SELECT id, type, data, recipients, event_ids, notification, created_at, lane, audience_of, audience_after, :reason
  FROM moved;

-- name: set_aside_rows()
SELECT id, type, cardinality(recipients) AS recipients, lane, audience_of, created_at, set_aside_at, reason
  FROM outbox_set_aside ORDER BY id;

-- name: retry_set_aside(ids)
-- Back into the outbox, at the end of their lanes (ids = NULL: all of them).
WITH moved AS (
    DELETE FROM outbox_set_aside WHERE :ids::bigint[] IS NULL OR id = ANY(:ids::bigint[]) RETURNING *
)
INSERT INTO outbox (type, data, recipients, event_ids, notification, created_at, lane, audience_of, audience_after)
SELECT type, data, recipients, event_ids, notification, created_at, lane, audience_of, audience_after
  FROM moved ORDER BY id
RETURNING id;

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
-- Personal events waiting (what /ready watches): an audience row's age is the time its walk
-- takes, minutes for a very large following, and says nothing of anyone's messages.
SELECT count(*) AS events, min(created_at) AS oldest FROM outbox WHERE lane >= 0;

-- name: backlog_by_lane()
SELECT lane, count(*) AS events, min(created_at) AS oldest FROM outbox GROUP BY lane ORDER BY lane;
