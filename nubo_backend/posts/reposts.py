"""Reposts: sharing someone's post with one's own followers. A repost is no post of its own:
the original shows in the reposter's followers' feeds (once, however many of those they
follow reposted it: sql/queries/posts/posts.sql feed_post_ids), its `repost_count` moves, and
its author is notified (`repost.created`). Quotes are posts with `quote_of` (service.create_post).

A repost or its undoing costs the reposter's request O(1), whatever their following: the
author's notification, and one live-only audience event (`post.reposted`, `post.unreposted`)
whose relay walks the reposter's followers in pieces, dropping their cached feed first pages
and telling those connected (outbox/audience.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
from orjson import Fragment

from nubo_backend.blocks.visibility import heard, hidden_from
from nubo_backend.edge.errors import not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.outbox import AudienceEvent, announce, notification
from nubo_backend.posts.service import (
    feed_key,
    get_post,
    post_changed,
    public_user,
    reposted_key,
    visible_author,
)
from nubo_backend.stores import Stores


def _to_followers(user_id: int, event_type: str, post_id: int) -> AudienceEvent:
    return AudienceEvent(user_id, event_type, {"post_id": post_id, "by": user_id})


async def repost(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent: reposting twice counts once. A post a block hides cannot be reposted (404)."""
    await visible_author(stores, post_id, user_id)
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            author_id = await stores.sql.posts.repost_post(conn, post_id=post_id, user_id=user_id)
            if author_id is not None:
                await announce(conn, stores, _to_followers(user_id, "post.reposted", post_id),
                               *await heard(conn, stores, user_id, notification(
                                   author_id, "repost.created", {"post_id": post_id, "actor_id": user_id})))
    except asyncpg.ForeignKeyViolationError:
        raise not_found("Post not found", "post_not_found") from None
    if author_id is not None:
        await post_changed(stores, post_id, feed_key(stores, user_id), reposted_key(stores, user_id))
    return await get_post(stores, post_id, user_id)


async def unrepost(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent: taking back a repost that is not there changes nothing."""
    async with stores.pg.acquire() as conn, conn.transaction():
        undone = await stores.sql.posts.unrepost_post(conn, post_id=post_id, user_id=user_id) is not None
        if undone:
            await announce(conn, stores, _to_followers(user_id, "post.unreposted", post_id))
    if undone:
        await post_changed(stores, post_id, feed_key(stores, user_id), reposted_key(stores, user_id))
    return await get_post(stores, post_id, user_id)


async def reposters(
    stores: Stores, post_id: int, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any]:
    """Who reposted a post, newest repost first (keyset on the repost). As seen by viewer_id:
    404 for a post a block hides, and reposters a block hides are left out."""
    hidden = await hidden_from(stores, viewer_id)
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None or author_id in hidden:
        raise not_found("Post not found", "post_not_found")
    rows = stores.sql.posts.reposters_page(stores.pg, post_id=post_id, before=before or MAX_ROW_ID, lim=limit + 1)
    result = page([r async for r in rows], limit, lambda r: [r["repost_id"]])
    result["items"] = [{**public_user(r), "reposted_at": r["reposted_at"]}
                       for r in result["items"] if r["id"] not in hidden]
    return result
