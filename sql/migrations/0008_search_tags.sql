-- Search (people, post bodies) and hashtags.
--
-- Text is folded once, the same way on both sides of every comparison: lower case, accents
-- removed (fold_text), so "Zoé", "ZOE" and "zoe" are one word.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- unaccent() is only STABLE (its dictionary could be edited), and indexes need IMMUTABLE:
-- pinning the dictionary makes the promise true for us. A SQL-standard body is bound at
-- creation, so no search_path can swap the functions it calls.
CREATE FUNCTION fold_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, t));

-- People: one trigram index answers "username starts with" and "display name contains"
-- with the query as a run-time parameter (a btree prefix scan needs a plan-time constant).
-- Usernames have no spaces, so the username is the text's first word.
CREATE INDEX users_search_trgm_idx ON users
    USING gin (fold_text(username || ' ' || display_name) gin_trgm_ops);

-- Posts: the 'simple' configuration (no stemming, no stop words) over folded text, because
-- a post's language is not known: English and French words are both found as written, with
-- or without accents. Stored, so ranking reads it instead of re-parsing every match.
ALTER TABLE posts ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, fold_text(body))) STORED;
CREATE INDEX posts_search_idx ON posts USING gin (search);

-- Hashtags, folded like the rest (lower case, no accents), in order of appearance.
CREATE TABLE post_tags (
    tag        text        NOT NULL CHECK (char_length(tag) BETWEEN 1 AND 50),
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    position   smallint    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tag, post_id)
);
-- GET /tags/{tag}/posts walks the primary key backwards (newest post first).
-- A post's tags (hydration) and the cascade from posts.
CREATE INDEX post_tags_post_idx ON post_tags (post_id, position) INCLUDE (tag);
-- Trending: the tags of the last 24 hours, index-only.
CREATE INDEX post_tags_recent_idx ON post_tags (created_at) INCLUDE (tag);
