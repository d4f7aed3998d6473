-- Photos uploaded by users, attached to at most one post or one message.
--
-- A row is an image already checked and re-encoded: the original (long side bounded) under
-- `storage_key` and its thumbnail under `thumb_key` in the media storage (disk or S3). The
-- files outlive no row: every deletion, whichever path causes it (a post deleted, a message
-- deleted, a conversation or an account erased by cascade, an unattached upload swept), queues
-- the row's keys in media_garbage in the same transaction, and a collector removes the files
-- and then the queue entries, after the commit.
CREATE TABLE media (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             text        NOT NULL DEFAULT 'image' CHECK (kind IN ('image')),
    content_type     text        NOT NULL,
    width            integer     NOT NULL CHECK (width > 0),
    height           integer     NOT NULL CHECK (height > 0),
    size_bytes       integer     NOT NULL CHECK (size_bytes > 0),
    blurhash         text        NOT NULL,
    storage_key      text        NOT NULL UNIQUE,
    etag             text        NOT NULL,
    thumb_key        text        NOT NULL UNIQUE,
    thumb_etag       text        NOT NULL,
    thumb_width      integer     NOT NULL CHECK (thumb_width > 0),
    thumb_height     integer     NOT NULL CHECK (thumb_height > 0),
    post_id          bigint      REFERENCES posts (id) ON DELETE CASCADE,
    message_id       bigint      REFERENCES messages (id) ON DELETE CASCADE,
    position         smallint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attached_at      timestamptz,
    CONSTRAINT media_one_parent CHECK (post_id IS NULL OR message_id IS NULL),
    CONSTRAINT media_attached_has_position CHECK ((post_id IS NULL AND message_id IS NULL) = (position IS NULL))
);
-- A post's or a message's media in order; also serve the cascades from posts and messages.
CREATE INDEX media_post_idx ON media (post_id, position) WHERE post_id IS NOT NULL;
CREATE INDEX media_message_idx ON media (message_id, position) WHERE message_id IS NOT NULL;
-- The sweep of unattached uploads, oldest first.
CREATE INDEX media_unattached_idx ON media (created_at) WHERE post_id IS NULL AND message_id IS NULL;
-- Serves the cascade when a user is deleted.
CREATE INDEX media_owner_idx ON media (owner_id);

CREATE TABLE media_garbage (
    storage_key text        PRIMARY KEY,
    queued_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION media_queue_files() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO media_garbage (storage_key)
    VALUES (OLD.storage_key), (OLD.thumb_key)
    ON CONFLICT DO NOTHING;
    RETURN OLD;
END
$$;

CREATE TRIGGER media_queue_files AFTER DELETE ON media
FOR EACH ROW EXECUTE FUNCTION media_queue_files();
