-- Issue #31: reposts and quotes, bookmarks, edit history (posts and messages), reactions on
-- messages, link preview cards.

-- Reposts take their ids from the posts' own sequence, so that a post id and a repost id are
-- one order in time: the feed ranks a post by its own id or by its newest repost's id, and
-- keeps one keyset over both.
CREATE TABLE reposts (
    id         bigint      PRIMARY KEY DEFAULT nextval('posts_id_seq'),
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reposts_pair_key UNIQUE (post_id, user_id)
);
-- The feed: one bounded scan per followed reposter (as posts_author_idx for their posts).
CREATE INDEX reposts_user_idx ON reposts (user_id, id DESC) INCLUDE (post_id);
-- Who reposted a post, newest first; and "was this post reposted after the cursor".
CREATE INDEX reposts_post_idx ON reposts (post_id, id DESC) INCLUDE (user_id);

-- quote_of has no foreign key on purpose: when the quoted post is deleted the quote keeps
-- its id and shows a tombstone in its place.
ALTER TABLE posts
    ADD COLUMN repost_count integer NOT NULL DEFAULT 0 CHECK (repost_count >= 0),
    ADD COLUMN quote_of     bigint,
    ADD COLUMN preview      jsonb;
CREATE INDEX posts_quote_of_idx ON posts (quote_of) WHERE quote_of IS NOT NULL;

CREATE TABLE post_bookmarks (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT post_bookmarks_pair_key UNIQUE (user_id, post_id)
);
-- GET /me/bookmarks: newest bookmark first, keyset on the bookmark's id.
CREATE INDEX post_bookmarks_user_idx ON post_bookmarks (user_id, id DESC) INCLUDE (post_id);
-- Serves the cascade when a post is deleted.
CREATE INDEX post_bookmarks_post_idx ON post_bookmarks (post_id);

-- Edit history: the version an edit replaced, written when it was (written_at) and until
-- the edit (replaced_at). The current version stays in posts / messages.
CREATE TABLE post_versions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id     bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    body        text        NOT NULL,
    written_at  timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX post_versions_post_idx ON post_versions (post_id, id DESC);

CREATE TABLE message_versions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint      NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    body        text        NOT NULL,
    written_at  timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_versions_message_idx ON message_versions (message_id, id DESC);

-- One row per (message, person, emoji); counts are aggregated per page of messages.
CREATE TABLE message_reactions (
    message_id bigint      NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      text        NOT NULL CHECK (length(emoji) BETWEEN 1 AND 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);
-- Serves the cascade when a user is deleted.
CREATE INDEX message_reactions_user_idx ON message_reactions (user_id);

-- Link preview cards, one per URL: the cache of fetches (a failed fetch is kept too, ok
-- false, so that it is not retried before it is stale). The card's image is checked and
-- re-encoded like an upload (card-sized, the upload's thumbnail) and kept in the media
-- storage under storage_key; a row deleted queues its file for the media collector.
-- posts.preview and messages.preview hold the card as shown (a copy: each keeps the card it
-- was given).
CREATE TABLE link_previews (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url          text        NOT NULL UNIQUE,
    ok           boolean     NOT NULL,
    title        text,
    description  text,
    content_type text,
    storage_key  text        UNIQUE,
    etag         text,
    fetched_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION link_previews_queue_file() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO media_garbage (storage_key) VALUES (OLD.storage_key) ON CONFLICT DO NOTHING;
    RETURN OLD;
END
$$;

CREATE TRIGGER link_previews_queue_file AFTER DELETE ON link_previews
FOR EACH ROW WHEN (OLD.storage_key IS NOT NULL) EXECUTE FUNCTION link_previews_queue_file();

ALTER TABLE messages ADD COLUMN preview jsonb;
