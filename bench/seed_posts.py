"""Seed a database with a social graph and ~100k posts, then print EXPLAIN plans of the list queries.

    python bench/seed_posts.py --dsn postgresql://postgres@127.0.0.1:5432/nubo_plans --create

`--create` (re)creates the database and migrates it. The plans are those of the named
queries in sql/queries/, run with realistic parameters, as a markdown section on stdout
(docs/query-plans.md quotes them).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nubo_backend.stores.migrations import migrate  # noqa: E402
from nubo_backend.stores.sql import load_queries  # noqa: E402

MAX_ID = 2**63 - 1
END_OF_TIME = datetime.max.replace(tzinfo=UTC)

SEED = """
INSERT INTO users (username, email, password_hash)
SELECT 'seed' || n, 'seed' || n || '@example.test', 'not-a-hash' FROM generate_series(1, $1) n;

-- Authors are skewed: a few write a lot (random()^3), like real timelines.
INSERT INTO posts (author_id, body, created_at, updated_at)
SELECT 1 + floor(power(random(), 3) * $1)::int,
       'post ' || n || ' ' || md5(n::text),
       now() - ($2 - n) * interval '20 seconds',
       now() - ($2 - n) * interval '20 seconds'
FROM generate_series(1, $2) n;

INSERT INTO follows (follower_id, followed_id)
SELECT u.id, f.id
FROM users u
CROSS JOIN LATERAL (
    SELECT id FROM users WHERE id <> u.id ORDER BY random() LIMIT $3
) f;

INSERT INTO post_likes (post_id, user_id, created_at)
SELECT 1 + floor(random() * $2)::int, 1 + floor(random() * $1)::int, now() - random() * interval '30 days'
FROM generate_series(1, $2 * 3)
ON CONFLICT DO NOTHING;

-- One post everybody liked: the longest list of likers.
INSERT INTO post_likes (post_id, user_id, created_at)
SELECT $2, id, now() - random() * interval '30 days' FROM users
ON CONFLICT DO NOTHING;

INSERT INTO comments (post_id, author_id, body)
SELECT 1 + floor(random() * $2)::int, 1 + floor(random() * $1)::int, 'comment ' || n
FROM generate_series(1, $2 / 2) n;

-- Reposts (issue #31): a fifth as many as posts, of skewed posts by skewed reposters, so
-- that feeds hold many reposts and popular posts are reposted by many of a reader's
-- followees; and bookmarks, a post in ten saved by someone.
INSERT INTO reposts (post_id, user_id)
SELECT $2 - floor(power(random(), 3) * $2)::int, 1 + floor(power(random(), 2) * $1)::int
FROM generate_series(1, $2 / 5)
ON CONFLICT DO NOTHING;
UPDATE posts p SET repost_count = r.n FROM (SELECT post_id, count(*) n FROM reposts GROUP BY 1) r
WHERE p.id = r.post_id;

INSERT INTO post_bookmarks (user_id, post_id)
SELECT 1 + floor(random() * $1)::int, 1 + floor(random() * $2)::int
FROM generate_series(1, $2 / 10)
ON CONFLICT DO NOTHING;

-- Counters as the application keeps them.
UPDATE posts p SET like_count = l.n FROM (SELECT post_id, count(*) n FROM post_likes GROUP BY 1) l
WHERE p.id = l.post_id;
UPDATE posts p SET comment_count = c.n FROM (SELECT post_id, count(*) n FROM comments GROUP BY 1) c
WHERE p.id = c.post_id;
UPDATE users u SET posts_count = s.n FROM (SELECT author_id, count(*) n FROM posts GROUP BY 1) s
WHERE u.id = s.author_id;
UPDATE users u SET followers_count = s.n FROM (SELECT followed_id, count(*) n FROM follows GROUP BY 1) s
WHERE u.id = s.followed_id;
UPDATE users u SET following_count = s.n FROM (SELECT follower_id, count(*) n FROM follows GROUP BY 1) s
WHERE u.id = s.follower_id;
"""

# Search and tags: bodies of everyday English and French words (skewed: a few are common,
# most rare) and 0-2 hashtags per post out of 300, dated as their post.
SEED_TEXT = """
WITH words AS (
    SELECT ARRAY['the', 'and', 'coffee', 'morning', 'rain', 'train', 'late', 'again', 'music',
                 'concert', 'tonight', 'weekend', 'friends', 'dinner', 'work', 'meeting', 'sunset',
                 'beach', 'football', 'match', 'election', 'news', 'book', 'reading', 'garden',
                 'le', 'et', 'café', 'matin', 'pluie', 'retard', 'encore', 'musique', 'soirée',
                 'amis', 'dîner', 'travail', 'réunion', 'plage', 'été', 'élection', 'journal',
                 'livre', 'lecture', 'jardin', 'crème', 'boulangerie', 'fête', 'vélo', 'hiver',
                 'neige', 'montagne', 'forêt', 'rivière', 'château', 'marché', 'fromage', 'pâtes',
                 'quantum', 'zeppelin'] AS w
)
UPDATE posts p SET body = p.body || ' ' || (
    SELECT string_agg(words.w[1 + floor(power(random(), 2) * array_length(words.w, 1))::int], ' ')
    FROM words, generate_series(1, 6 + p.id % 7) g
)
;
INSERT INTO post_tags (tag, post_id, position, created_at)
SELECT DISTINCT ON (t.tag, p.id) t.tag, p.id, t.n, p.created_at
FROM posts p
CROSS JOIN LATERAL (
    SELECT 'tag' || floor(power(random(), 3) * 300)::int AS tag, g AS n
    FROM generate_series(1, p.id % 3) g
) t
ON CONFLICT DO NOTHING;
"""


async def create_database(dsn: str) -> None:
    base, _, name = dsn.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await migrate(dsn)


async def seed(conn: asyncpg.Connection, users: int, posts: int, follows: int) -> None:
    # The sizes are ints from argparse: inlined, so each statement runs as a plain script.
    sizes = {"$1": str(int(users)), "$2": str(int(posts)), "$3": str(int(follows))}
    script = re.sub(r"\$\d", lambda m: sizes[m.group(0)], SEED)
    await conn.execute(script)
    await conn.execute(SEED_TEXT)
    await conn.execute("VACUUM ANALYZE")


async def explain(conn: asyncpg.Connection, label: str, sql: str, *args: object) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
    plan = "\n".join(r[0] for r in rows)
    return f"### {label}\n\n```\n{plan}\n```\n"


async def plans(conn: asyncpg.Connection) -> str:
    q = load_queries()
    busy_author = await conn.fetchval("SELECT id FROM users ORDER BY posts_count DESC LIMIT 1")
    reader = await conn.fetchval("SELECT id FROM users ORDER BY following_count DESC, id LIMIT 1")
    middle = await conn.fetchval("SELECT id FROM posts ORDER BY id LIMIT 1 OFFSET 50000")
    busy_post = await conn.fetchval("SELECT id FROM posts ORDER BY comment_count DESC LIMIT 1")
    star = await conn.fetchval("SELECT id FROM users ORDER BY followers_count DESC LIMIT 1")
    liked_post = await conn.fetchval("SELECT id FROM posts ORDER BY like_count DESC LIMIT 1")
    likers_middle = await conn.fetchrow(
        "SELECT created_at, user_id FROM post_likes WHERE post_id = $1 ORDER BY created_at DESC, user_id DESC "
        "LIMIT 1 OFFSET (SELECT like_count / 2 FROM posts WHERE id = $1)", liked_post)
    reposted = await conn.fetchval("SELECT id FROM posts ORDER BY repost_count DESC LIMIT 1")
    bookmarker = await conn.fetchval("SELECT user_id FROM post_bookmarks GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    busy_tag = await conn.fetchval("SELECT tag FROM post_tags GROUP BY tag ORDER BY count(*) DESC LIMIT 1")
    day_ago = await conn.fetchval("SELECT now() - interval '24 hours'")
    page_ids = [r[0] for r in await conn.fetch("SELECT id FROM posts ORDER BY id DESC LIMIT 20")]
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM users) u, (SELECT count(*) FROM posts) p, (SELECT count(*) FROM follows) f,"
        " (SELECT count(*) FROM post_likes) l, (SELECT count(*) FROM comments) c,"
        " (SELECT count(*) FROM post_tags) t, (SELECT count(*) FROM reposts) r,"
        " (SELECT count(*) FROM post_bookmarks) b")
    out = [f"Dataset: {counts['u']} users, {counts['p']} posts, {counts['f']} follows, "
           f"{counts['l']} likes, {counts['c']} comments, {counts['t']} post tags, "
           f"{counts['r']} reposts, {counts['b']} bookmarks.\n"]
    cases = [
        ("GET /posts, first page (recent_post_ids)", q.posts.recent_post_ids.sql, MAX_ID, 21),
        ("GET /posts, page in the middle (recent_post_ids)", q.posts.recent_post_ids.sql, middle, 21),
        ("Hydrating a page (posts_by_ids, 20 ids)", q.posts.posts_by_ids.sql, page_ids),
        ("Filling a viewer's cached liked set (all_liked_post_ids)", q.posts.all_liked_post_ids.sql, reader),
        ("The viewer's flags when Redis is down (viewer_post_states)", q.posts.viewer_post_states.sql, reader,
         page_ids),
        ("GET /feed, first page (feed_post_ids)", q.posts.feed_post_ids.sql, reader, MAX_ID, 21),
        ("GET /feed, page in the middle (feed_post_ids)", q.posts.feed_post_ids.sql, reader, middle, 21),
        ("GET /posts/{id}/reposts, most reposted post (reposters_page)", q.posts.reposters_page.sql,
         reposted, MAX_ID, 21),
        ("GET /me/bookmarks (bookmark_page)", q.posts.bookmark_page.sql, bookmarker, MAX_ID, 21),
        ("GET /users/{id}/posts, most prolific author (user_post_ids)", q.posts.user_post_ids.sql,
         busy_author, MAX_ID, 21),
        ("GET /posts/{id}/comments (comments_page)", q.posts.comments_page.sql, busy_post, 0, 21),
        ("GET /posts/{id}/likes, most liked post (likers_page)", q.posts.likers_page.sql, liked_post,
         END_OF_TIME, MAX_ID, 21),
        ("GET /posts/{id}/likes, page in the middle (likers_page)", q.posts.likers_page.sql, liked_post,
         likers_middle["created_at"], likers_middle["user_id"], 21),
        ("GET /users/{id}/followers (followers_page)", q.users.followers_page.sql, star, MAX_ID, 21),
        ("GET /users/{id}/following (following_page)", q.users.following_page.sql, reader, MAX_ID, 21),
        ("A new post's audience, one relay piece of 5,000 followers (audience_page)",
         q.outbox.audience_page.sql, star, 0, 5000),
        ("GET /users/{username} (user_id_by_username)", q.users.user_id_by_username.sql, "SEED42"),
        ("followed_by_me (is_following)", q.users.is_following.sql, reader, star),
        ("GET /search/users?q=seed42 (search_users)", q.search.search_users.sql, "seed42", -1, 0, 21),
        ("GET /search/users?q=se, a short, common prefix (search_users)", q.search.search_users.sql,
         "se", -1, 0, 21),
        ("GET /search/posts?q=zeppelin, the seed's rarest word (7% of posts) (search_post_ids)",
         q.search.search_post_ids.sql, "zeppelin", float("inf"), MAX_ID, 21),
        ("GET /search/posts?q=cafe pluie, two common words (search_post_ids)",
         q.search.search_post_ids.sql, "cafe pluie", float("inf"), MAX_ID, 21),
        ("GET /search/posts?q=the, the most common word (search_post_ids)", q.search.search_post_ids.sql,
         "the", float("inf"), MAX_ID, 21),
        ("GET /tags/{tag}/posts, the busiest tag (tag_post_ids)", q.tags.tag_post_ids.sql, busy_tag,
         MAX_ID, 21),
        ("GET /tags/{tag}/posts, page in the middle (tag_post_ids)", q.tags.tag_post_ids.sql, busy_tag,
         middle, 21),
        ("GET /tags/trending on a miss (trending_tags)", q.tags.trending_tags.sql, day_ago, 20),
    ]
    for label, sql, *args in cases:
        out.append(await explain(conn, label, sql, *args))
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--create", action="store_true", help="drop, create and migrate the database first")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--follows", type=int, default=100, help="accounts each user follows")
    parser.add_argument("--no-seed", action="store_true", help="only print the plans")
    args = parser.parse_args()
    if args.create:
        await create_database(args.dsn)
    conn = await asyncpg.connect(args.dsn)
    try:
        if not args.no_seed:
            await seed(conn, args.users, args.posts, args.follows)
        print(await plans(conn))
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
