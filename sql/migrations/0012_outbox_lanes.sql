-- Relay lanes (nubo_backend/outbox/lanes.py). Personal events are relayed in lanes keyed by
-- recipient, each drained under its own lock, so lanes run in parallel and one lane's trouble
-- holds no other; a user's events stay in one lane, in id order. Events for an author's
-- audience (a post to followers) are live-only and go through audience lanes, in bounded
-- pieces of followers, never one numbered event per follower.

-- lane >= 0: a personal lane (recipient id % lanes); lane < 0: audience lane -1 - (author % lanes).
ALTER TABLE outbox ADD COLUMN lane integer NOT NULL DEFAULT 0;
-- Audience rows: whose followers hear of it (recipients and event_ids are empty), and the
-- last follow id already served (the relay's progress through a large audience).
ALTER TABLE outbox ADD COLUMN audience_of bigint;
ALTER TABLE outbox ADD COLUMN audience_after bigint NOT NULL DEFAULT 0;

CREATE INDEX outbox_lane_idx ON outbox (lane, id);

-- Rows the relay gave up on after bounded attempts (a document refused for good, a batch
-- that kept failing while the stores answered): kept for an operator (`nubo outbox`), out of
-- the way of every event behind them.
CREATE TABLE outbox_set_aside (
    id             bigint      PRIMARY KEY,  -- the outbox id it had
    type           text        NOT NULL,
    data           text        NOT NULL,
    recipients     bigint[]    NOT NULL,
    event_ids      bigint[]    NOT NULL,
    notification   boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    lane           integer     NOT NULL,
    audience_of    bigint,
    audience_after bigint      NOT NULL,
    reason         text        NOT NULL,
    set_aside_at   timestamptz NOT NULL DEFAULT now()
);

-- Wake only the relays of the lanes a commit wrote to (the payload names them), so many lanes
-- do not mean many empty batches per commit. Identical payloads in one transaction are sent once.
CREATE OR REPLACE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nubo_outbox', lane::text) FROM (SELECT DISTINCT lane FROM new_rows) AS l;
    RETURN NULL;
END $$;

DROP TRIGGER outbox_wake ON outbox;
CREATE TRIGGER outbox_wake AFTER INSERT ON outbox REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();
