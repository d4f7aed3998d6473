-- Push subscriptions (Web Push and native devices) and the durable queue of pushes.

-- name: delete_replaced_webpush(session_id, endpoint)!
-- Before a session subscribes: its previous subscription goes, and so does the endpoint's if
-- another session had it (the endpoint moves to this one).
DELETE FROM push_subscriptions WHERE kind = 'webpush' AND (session_id = :session_id OR endpoint = :endpoint);

-- name: insert_webpush(user_id, session_id, endpoint, origin, p256dh, auth, alerts, policy)^
INSERT INTO push_subscriptions (user_id, session_id, kind, endpoint, origin, p256dh, auth, alerts, policy)
VALUES (:user_id, :session_id, 'webpush', :endpoint, :origin, :p256dh, :auth, :alerts, :policy)
RETURNING id, endpoint, alerts, policy;

-- name: webpush_of_session(session_id)^
SELECT id, endpoint, alerts, policy FROM push_subscriptions
 WHERE kind = 'webpush' AND session_id = :session_id;

-- name: update_webpush_data(session_id, alerts, policy)^
UPDATE push_subscriptions SET alerts = :alerts, policy = :policy
 WHERE kind = 'webpush' AND session_id = :session_id
RETURNING id, endpoint, alerts, policy;

-- name: delete_webpush(session_id)$
DELETE FROM push_subscriptions WHERE kind = 'webpush' AND session_id = :session_id RETURNING 1;

-- name: delete_of_sessions(session_ids)!
-- Logout or revocation: the sessions' subscriptions and devices go with them.
DELETE FROM push_subscriptions WHERE session_id = ANY(:session_ids::text[]);

-- name: upsert_device(user_id, session_id, kind, token, alerts, policy)^
-- A device token belongs to the last session that registered it.
INSERT INTO push_subscriptions (user_id, session_id, kind, endpoint, origin, alerts, policy)
VALUES (:user_id, :session_id, :kind, :token, :kind, :alerts, :policy)
ON CONFLICT (kind, endpoint) DO UPDATE
   SET user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id,
       alerts = EXCLUDED.alerts, policy = EXCLUDED.policy
RETURNING id, kind, endpoint AS token, alerts, policy;

-- name: delete_device(user_id, kind, token)$
DELETE FROM push_subscriptions
 WHERE user_id = :user_id AND kind = :kind AND endpoint = :token RETURNING 1;

-- name: delete_subscription(id)!
DELETE FROM push_subscriptions WHERE id = :id;

-- name: subscriptions_of_users(user_ids)
-- Where each of these users' pushes go (a policy of `none` takes no push at all).
SELECT id, user_id, alerts, policy FROM push_subscriptions
 WHERE user_id = ANY(:user_ids::bigint[]) AND policy <> 'none';

-- name: follows_among(follower_ids, followed_ids)
-- Which of the pairs (follower_ids[i] follows followed_ids[i]) exist.
SELECT f.follower_id, f.followed_id
  FROM unnest(:follower_ids::bigint[], :followed_ids::bigint[]) AS p(a, b)
  JOIN follows f ON f.follower_id = p.a AND f.followed_id = p.b;

-- name: insert_jobs(subscription_ids, event_ids, kinds, payloads, urgencies, topics, delay, ttls)!
-- Each (event, subscription) once: a relay batch redone after a crash inserts nothing twice.
INSERT INTO push_jobs (subscription_id, event_id, kind, payload, urgency, topic, not_before, expires_at)
SELECT s, e, k, p, u, t, now() + make_interval(secs => :delay), now() + make_interval(secs => ttl)
  FROM unnest(:subscription_ids::bigint[], :event_ids::bigint[], :kinds::text[], :payloads::text[],
              :urgencies::text[], :topics::text[], :ttls::float8[]) AS j(s, e, k, p, u, t, ttl)
ON CONFLICT (subscription_id, event_id) DO NOTHING;

-- name: claim_due_jobs(lim, lease, busy_origins, kinds, origins, rooms, room)
-- Take up to lim due jobs, leased for `lease` seconds (a sender that dies mid-push leaves
-- them to be taken again after it), at most the room this sender has left per origin
-- (rooms[i] for origins[i], `room` for any other), of the kinds it is configured for.
WITH due AS (
    SELECT j.id, s.origin, j.not_before FROM push_jobs j JOIN push_subscriptions s ON s.id = j.subscription_id
     WHERE j.not_before <= now() AND s.origin <> ALL(:busy_origins::text[]) AND s.kind = ANY(:kinds::text[])
     ORDER BY j.not_before LIMIT :lim
       FOR UPDATE OF j SKIP LOCKED
), ranked AS (
    SELECT id, origin, row_number() OVER (PARTITION BY origin ORDER BY not_before) AS n FROM due
), picked AS (
    SELECT r.id FROM ranked r
      LEFT JOIN unnest(:origins::text[], :rooms::int[]) AS o(name, room) ON o.name = r.origin
     WHERE r.n <= coalesce(o.room, :room)
)
UPDATE push_jobs j SET not_before = now() + make_interval(secs => :lease), attempts = j.attempts + 1
  FROM picked, push_subscriptions s
 WHERE j.id = picked.id AND s.id = j.subscription_id
RETURNING j.id, j.subscription_id, j.event_id, j.kind AS event_kind, j.payload, j.urgency, j.topic,
          j.attempts, extract(epoch FROM j.expires_at - now())::float8 AS ttl_left,
          s.user_id, s.session_id, s.kind, s.endpoint, s.origin, s.p256dh, s.auth;

-- name: delete_job(id)!
DELETE FROM push_jobs WHERE id = :id;

-- name: retry_job(id, delay)!
UPDATE push_jobs SET not_before = now() + make_interval(secs => :delay) WHERE id = :id;

-- name: next_due_in(busy_origins, kinds)$
-- Seconds until the next job of an origin not in busy_origins falls due (NULL: none waiting).
SELECT extract(epoch FROM min(j.not_before) - now())::float8
  FROM push_jobs j JOIN push_subscriptions s ON s.id = j.subscription_id
 WHERE s.origin <> ALL(:busy_origins::text[]) AND s.kind = ANY(:kinds::text[]);

-- name: silenced_pairs(actor_ids, user_ids)
-- Which pairs (actor_ids[i], user_ids[i]) a push must not cross: a block either way, or the
-- user muted the actor (what blocks.silenced_among says for notifications, many actors at once).
SELECT p.a AS actor_id, p.u AS user_id
  FROM unnest(:actor_ids::bigint[], :user_ids::bigint[]) AS p(a, u)
 WHERE EXISTS (SELECT 1 FROM blocks
                WHERE (blocker_id = p.a AND blocked_id = p.u) OR (blocker_id = p.u AND blocked_id = p.a))
    OR EXISTS (SELECT 1 FROM mutes WHERE muter_id = p.u AND muted_id = p.a);
