-- Durable announcements (nubo_backend/outbox/). A change and the events that announce it are
-- written in the same transaction, so a crash, or Redis or MongoDB being down, can delay an
-- event but never lose it.

-- Each user's last event id. Taken in the announcing transaction with a row lock held until
-- commit, so a user's ids are gapless and follow commit order on every instance.
CREATE TABLE event_sequences (
    user_id bigint PRIMARY KEY,
    last_id bigint NOT NULL
);

-- Events committed but not yet journaled in MongoDB and published on Redis. The relay deletes
-- a row once both are done; the table is empty whenever the stores are healthy.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    type         text        NOT NULL,
    data         text        NOT NULL,  -- the event's data as clients receive it (JSON)
    recipients   bigint[]    NOT NULL,
    event_ids    bigint[]    NOT NULL,  -- event_ids[i] is recipients[i]'s id for this event
    notification boolean     NOT NULL DEFAULT false,  -- also kept in the recipient's notifications
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Every commit that announced something wakes the relays of every instance (LISTEN
-- nubo_outbox): notifications are delivered at commit, and only if it commits.
CREATE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nubo_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_wake AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();
