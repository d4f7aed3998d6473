"""Posts, likes and feeds: the rules, the cache around them, and the events they cause.

What is cached is what every viewer shares: one entry per post (`post:<id>`), and the id
lists of the first pages (`posts:recent`, `feed:<user id>`). Pages are id lists hydrated
from the post entries, so a like or an edit touches one key, never every page showing the
post. The viewer's own state (`liked_by_me`) is overlaid from one indexed query.

Feed first pages are invalidated by deleting the followers' keys when an author posts or
deletes: the same fan-out as the `post.created` event that already goes to each follower,
so it costs one pipelined round trip more, and it is exact (no version to compare on reads,
which stay one GET).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from nubo_backend.cache import get_many_or_load, get_or_load, invalidate
from nubo_backend.errors import forbidden, not_found
from nubo_backend.notifications.service import notify
from nubo_backend.pagination import MAX_LIMIT, page
from nubo_backend.posts.schemas import MAX_ID, check_length
from nubo_backend.realtime.events import emit
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.posts")

# The first pages are cached long enough for any ?limit= (fetching limit + 1).
FIRST_PAGE_IDS = MAX_LIMIT + 1


def post_key(stores: Stores, post_id: int) -> str:
    return stores.keys("post", post_id)


def recent_key(stores: Stores) -> str:
    return stores.keys("posts", "recent")


def feed_key(stores: Stores, user_id: int) -> str:
    return stores.keys("feed", user_id)


def profile_key(stores: Stores, user_id: int) -> str:
    return stores.keys("profile", user_id)


def public_post(row: Any) -> dict[str, Any]:
    """A post as every viewer sees it (the cached part)."""
    return {
        "id": row["id"],
        "author": {
            "id": row["author_id"],
            "username": row["username"],
            "display_name": row["display_name"],
            "avatar_url": row["avatar_url"],
        },
        "body": row["body"],
        "media_urls": list(row["media_urls"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "edited_at": row["edited_at"],
        "like_count": row["like_count"],
        "comment_count": row["comment_count"],
    }


async def after_commit(what: str, action: Awaitable[Any]) -> None:
    """Events and notifications announce a committed change; they never fail it."""
    try:
        await action
    except (RedisError, PyMongoError, OSError) as exc:
        log.warning("%s not delivered: %s", what, exc)


# --- reads -----------------------------------------------------------------------------


async def _load_posts(stores: Stores, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {row["id"]: public_post(row) async for row in stores.sql.posts.posts_by_ids(stores.pg, ids=ids)}


async def with_viewer(stores: Stores, posts: list[dict[str, Any]], viewer_id: int | None) -> None:
    """Overlay the viewer's own state on shared post entries."""
    liked: set[int] = set()
    if viewer_id is not None and posts:
        rows = stores.sql.posts.liked_post_ids(stores.pg, user_id=viewer_id, ids=[p["id"] for p in posts])
        liked = {r["post_id"] async for r in rows}
    for post in posts:
        post["liked_by_me"] = post["id"] in liked


async def hydrate(stores: Stores, ids: list[int], viewer_id: int | None) -> list[dict[str, Any]]:
    """Posts for ids, in that order; ids deleted meanwhile are skipped."""
    found = await get_many_or_load(stores, ids, lambda i: post_key(stores, i),
                                   lambda missing: _load_posts(stores, missing))
    posts = [p for p in found if p is not None]
    await with_viewer(stores, posts, viewer_id)
    return posts


async def get_post(stores: Stores, post_id: int, viewer_id: int | None) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        return (await _load_posts(stores, [post_id])).get(post_id)

    post = await get_or_load(stores, post_key(stores, post_id), load)
    if post is None:
        raise not_found("Post not found", "post_not_found")
    await with_viewer(stores, [post], viewer_id)
    return post


IdQuery = Callable[[int, int], AsyncIterator[Any]]


async def _id_page(
    stores: Stores,
    query: IdQuery,
    first_page_key: str | None,
    limit: int,
    before: int | None,
    viewer_id: int | None,
) -> dict[str, Any]:
    """One page of posts, newest first: ids by keyset (first page cached), then hydration."""

    async def ids_from(start: int, count: int) -> list[int]:
        return [r["id"] async for r in query(start, count)]

    if before is None and first_page_key is not None:
        ids = await get_or_load(stores, first_page_key, lambda: ids_from(MAX_ID, FIRST_PAGE_IDS))
        ids = ids[: limit + 1]
    else:
        ids = await ids_from(before or MAX_ID, limit + 1)
    result = page(ids, limit, lambda post_id: [post_id])
    result["items"] = await hydrate(stores, result["items"], viewer_id)
    return result


async def recent_posts(
    stores: Stores, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any]:
    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.recent_post_ids(stores.pg, before=start, lim=count)

    return await _id_page(stores, query, recent_key(stores), limit, before, viewer_id)


async def feed(stores: Stores, user_id: int, limit: int, before: int | None) -> dict[str, Any]:
    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.feed_post_ids(stores.pg, user_id=user_id, before=start, lim=count)

    return await _id_page(stores, query, feed_key(stores, user_id), limit, before, user_id)


async def user_posts(
    stores: Stores, author_id: int, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any]:
    if not await stores.sql.users.user_exists(stores.pg, user_id=author_id):
        raise not_found("User not found", "user_not_found")

    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.user_post_ids(stores.pg, author_id=author_id, before=start, lim=count)

    return await _id_page(stores, query, None, limit, before, viewer_id)


# --- writes ----------------------------------------------------------------------------


async def _author_fanout(stores: Stores, author_id: int) -> list[int]:
    return [r["follower_id"] async for r in stores.sql.users.follower_ids(stores.pg, user_id=author_id)]


async def _invalidate_timelines(stores: Stores, author_id: int, follower_ids: list[int], *extra: str) -> None:
    """A post appeared or vanished: every first page that can show it, and the post count."""
    await invalidate(
        stores,
        recent_key(stores),
        profile_key(stores, author_id),
        *(feed_key(stores, uid) for uid in (author_id, *follower_ids)),
        *extra,
    )


async def create_post(
    stores: Stores, author_id: int, body: str, media_urls: list[str]
) -> dict[str, Any]:
    check_length("body", body, stores.settings.post_max_length)
    row = await stores.sql.posts.insert_post(
        stores.pg, author_id=author_id, body=body, media_urls=media_urls
    )
    post = public_post(row)
    follower_ids = await _author_fanout(stores, author_id)
    await _invalidate_timelines(stores, author_id, follower_ids)
    await after_commit("post.created", emit(stores, follower_ids, "post.created", {"post": post}))
    post["liked_by_me"] = False
    return post


async def _own_post(stores: Stores, post_id: int, user_id: int) -> None:
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None:
        raise not_found("Post not found", "post_not_found")
    if author_id != user_id:
        raise forbidden("Only the author may change this post", "not_author")


async def update_post(
    stores: Stores, post_id: int, user_id: int, body: str | None, media_urls: list[str] | None
) -> dict[str, Any]:
    if body is not None:
        check_length("body", body, stores.settings.post_max_length)
    await _own_post(stores, post_id, user_id)
    row = await stores.sql.posts.update_post(
        stores.pg, post_id=post_id, author_id=user_id, body=body, media_urls=media_urls
    )
    if row is None:  # deleted between the check and the update
        raise not_found("Post not found", "post_not_found")
    await invalidate(stores, post_key(stores, post_id))
    post = public_post(row)
    await with_viewer(stores, [post], user_id)
    return post


async def delete_post(stores: Stores, post_id: int, user_id: int) -> None:
    await _own_post(stores, post_id, user_id)
    if await stores.sql.posts.delete_post(stores.pg, post_id=post_id, author_id=user_id) is None:
        raise not_found("Post not found", "post_not_found")
    follower_ids = await _author_fanout(stores, user_id)
    await _invalidate_timelines(stores, user_id, follower_ids, post_key(stores, post_id))


async def like_post(stores: Stores, post_id: int, user_id: int) -> dict[str, Any]:
    """Idempotent: liking twice counts once."""
    try:
        author_id = await stores.sql.posts.like_post(stores.pg, post_id=post_id, user_id=user_id)
    except asyncpg.ForeignKeyViolationError:
        raise not_found("Post not found", "post_not_found") from None
    if author_id is not None:
        await invalidate(stores, post_key(stores, post_id))
        await after_commit("like.created", notify(
            stores, author_id, "like.created", {"post_id": post_id, "actor_id": user_id}))
    return await get_post(stores, post_id, user_id)


async def unlike_post(stores: Stores, post_id: int, user_id: int) -> dict[str, Any]:
    """Idempotent: unliking a post not liked changes nothing."""
    if await stores.sql.posts.unlike_post(stores.pg, post_id=post_id, user_id=user_id) is not None:
        await invalidate(stores, post_key(stores, post_id))
    return await get_post(stores, post_id, user_id)
