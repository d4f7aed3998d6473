-- Social content: posts, comments, likes, follows, and the counters shown with them.
--
-- Counters are denormalised and changed in the same statement as the row they count
-- (INSERT ... ON CONFLICT DO NOTHING RETURNING drives the increment, DELETE ... RETURNING
-- the decrement), so they stay exact under concurrent likes, unlikes and deletes.
ALTER TABLE users
    ADD COLUMN followers_count integer NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    ADD COLUMN following_count integer NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    ADD COLUMN posts_count     integer NOT NULL DEFAULT 0 CHECK (posts_count >= 0);

CREATE TABLE posts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body          text        NOT NULL CHECK (body <> ''),
    media_urls    text[]      NOT NULL DEFAULT '{}',
    like_count    integer     NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count integer     NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    edited_at     timestamptz
);
-- GET /posts pages walk the primary key backwards (newest first = highest id first).
-- A user's posts, and the feed (one bounded index scan per followed author).
CREATE INDEX posts_author_idx ON posts (author_id, id DESC);

CREATE TABLE comments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       text        NOT NULL CHECK (body <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    edited_at  timestamptz
);
-- A post's comments, oldest first; also serves the cascade from posts.
CREATE INDEX comments_post_idx ON comments (post_id, id);
-- Serves the cascade when a user is deleted.
CREATE INDEX comments_author_idx ON comments (author_id);

CREATE TABLE post_likes (
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);
-- "Which of these posts did I like" (liked_by_me) starts from the viewer.
CREATE INDEX post_likes_user_idx ON post_likes (user_id, post_id);

CREATE TABLE follows (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    follower_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followed_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT follows_pair_key UNIQUE (follower_id, followed_id),
    CONSTRAINT follows_no_self CHECK (follower_id <> followed_id)
);
-- Followers / following lists, most recent first; the second also feeds the feed.
CREATE INDEX follows_followed_idx ON follows (followed_id, id DESC) INCLUDE (follower_id);
CREATE INDEX follows_follower_idx ON follows (follower_id, id DESC) INCLUDE (followed_id);
