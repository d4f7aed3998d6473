"""Public profiles (cached, shared by every viewer) and follows (idempotent, counted exactly)."""

from __future__ import annotations

from typing import Any

import asyncpg

from nubo_backend.blocks.visibility import heard, hidden_from, refuse_if_blocked
from nubo_backend.edge.errors import NuboError, not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.jsonutil import loads
from nubo_backend.outbox import announce, notification
from nubo_backend.posts.service import feed_key, post_key, profile_key, public_page_key, public_user, recent_key
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import get_or_load, invalidate

PROFILE_FIELDS = ("id", "username", "display_name", "bio", "avatar_url", "created_at",
                  "followers_count", "following_count", "posts_count")


def _user_not_found() -> NuboError:
    return not_found("User not found", "user_not_found")


async def resolve_user(stores: Stores, ref: str) -> int:
    """A user id from `/users/<id or username>`; 404 for anything that names nobody."""
    if ref.isascii() and ref.isdigit():
        user_id = int(ref)
        if 0 < user_id <= MAX_ROW_ID:
            return user_id
        raise _user_not_found()
    user_id = await stores.sql.users.user_id_by_username(stores.pg, username=ref)
    if user_id is None:
        raise _user_not_found()
    return user_id


async def get_profile(stores: Stores, user_id: int, viewer_id: int | None) -> dict[str, Any]:
    """404 also when a block stands between viewer and user: for that viewer, they are not there."""
    if user_id in await hidden_from(stores, viewer_id):
        raise _user_not_found()

    async def load() -> dict[str, Any] | None:
        row = await stores.sql.users.get_profile(stores.pg, user_id=user_id)
        return None if row is None else {f: row[f] for f in PROFILE_FIELDS}

    raw = await get_or_load(stores, profile_key(stores, user_id), load)
    if raw is None:
        raise _user_not_found()
    profile = loads(raw)
    if viewer_id is not None and viewer_id != user_id:
        profile["followed_by_me"] = await stores.sql.users.is_following(
            stores.pg, follower_id=viewer_id, followed_id=user_id
        )
    elif viewer_id is not None:
        profile["followed_by_me"] = False
    return profile


async def invalidate_profile(stores: Stores, user_id: int) -> None:
    """For any change to a user's public fields (e.g. a profile edit), once committed."""
    await invalidate(stores, profile_key(stores, user_id))


def _no_self_follow(follower_id: int, followed_id: int) -> None:
    if follower_id == followed_id:
        raise NuboError(422, "self_follow", "You cannot follow yourself",
                        details=[{"field": "id", "message": "Cannot follow yourself"}])


async def _after_follow_change(stores: Stores, follower_id: int, followed_id: int) -> None:
    # Both profiles' counts changed, and the follower's feed gains or loses an author.
    await invalidate(stores, profile_key(stores, follower_id), profile_key(stores, followed_id),
                     feed_key(stores, follower_id))


async def _lock_pair(conn: asyncpg.Connection, stores: Stores, follower_id: int, followed_id: int) -> None:
    """Both users' rows, in id order, before the follow changes (users.sql lock_user_pair)."""
    async for _ in stores.sql.users.lock_user_pair(conn, user_id=follower_id, other_id=followed_id):
        pass


async def follow(stores: Stores, follower_id: int, followed_id: int) -> dict[str, Any]:
    """Idempotent: following twice changes nothing the second time."""
    _no_self_follow(follower_id, followed_id)
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            await _lock_pair(conn, stores, follower_id, followed_id)
            created = await stores.sql.users.follow(conn, follower_id=follower_id, followed_id=followed_id)
            # After the follow took both users' rows: a block committed meanwhile is seen here
            # (users.sql lock_user_pair), and the follow rolls back.
            await refuse_if_blocked(conn, stores, follower_id, followed_id)
            if created:
                await announce(conn, stores, *await heard(
                    conn, stores, follower_id, notification(followed_id, "follow.created", {"actor_id": follower_id})))
    except asyncpg.ForeignKeyViolationError:
        raise _user_not_found() from None
    if created:
        await _after_follow_change(stores, follower_id, followed_id)
    return await get_profile(stores, followed_id, follower_id)


async def unfollow(stores: Stores, follower_id: int, followed_id: int) -> dict[str, Any]:
    _no_self_follow(follower_id, followed_id)
    async with stores.pg.acquire() as conn, conn.transaction():
        await _lock_pair(conn, stores, follower_id, followed_id)
        removed = await stores.sql.users.unfollow(conn, follower_id=follower_id, followed_id=followed_id)
    if removed:
        await _after_follow_change(stores, follower_id, followed_id)
    return await get_profile(stores, followed_id, follower_id)


async def follow_list(
    stores: Stores, user_id: int, direction: str, limit: int, before: int | None,
    viewer_id: int | None = None,
) -> dict[str, Any]:
    """`followers` or `following` of user_id, most recent follow first; as seen by viewer_id
    (404 across a block; people a block hides from the viewer are left out of the page)."""
    hidden = await hidden_from(stores, viewer_id)
    if user_id in hidden or not await stores.sql.users.user_exists(stores.pg, user_id=user_id):
        raise _user_not_found()
    query = stores.sql.users.followers_page if direction == "followers" else stores.sql.users.following_page
    rows = [r async for r in query(stores.pg, user_id=user_id, before=before or MAX_ROW_ID, lim=limit + 1)]
    result = page(rows, limit, lambda r: [r["follow_id"]])
    result["items"] = [{**public_user(r), "followed_at": r["followed_at"]}
                       for r in result["items"] if r["id"] not in hidden]
    return result


async def erase_user(stores: Stores, user_id: int) -> bool:
    """Delete an account and everything it owns, keeping everyone else's counters and cached
    pages right. Its messages stay in their conversations without a sender. False if absent."""
    q = stores.sql.users
    async with stores.pg.acquire() as conn, conn.transaction():
        if await q.lock_user(conn, user_id=user_id) is None:
            return False
        users = [row["id"] async for row in q.uncount_follows_of(conn, user_id=user_id)]
        users += [row["id"] async for row in q.uncount_followers_of(conn, user_id=user_id)]
        posts = [row["id"] async for row in q.uncount_likes_of(conn, user_id=user_id)]
        posts += [row["id"] async for row in q.uncount_comments_of(conn, user_id=user_id)]
        own_posts = [row["id"] async for row in q.post_ids_of(conn, user_id=user_id)]
        await q.delete_user(conn, user_id=user_id)
    await invalidate(
        stores,
        profile_key(stores, user_id),
        recent_key(stores),
        public_page_key(stores),
        feed_key(stores, user_id),
        *(profile_key(stores, uid) for uid in set(users)),
        *(feed_key(stores, uid) for uid in set(users)),  # followers' feeds showed the erased posts
        *(post_key(stores, pid) for pid in set(posts) | set(own_posts)),
    )
    return True
