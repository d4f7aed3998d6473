"""Bookmarks: posts a person saved for later, private to them (no event, no notification,
no count on the post)."""

from __future__ import annotations

from typing import Any

import asyncpg
from orjson import Fragment

from nubo_backend.edge.errors import not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.posts.service import bookmarked_key, get_post, hydrate, visible_author
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import invalidate


async def bookmark(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent. A post a block hides cannot be bookmarked (404)."""
    await visible_author(stores, post_id, user_id)
    try:
        added = await stores.sql.posts.bookmark_post(stores.pg, user_id=user_id, post_id=post_id)
    except asyncpg.ForeignKeyViolationError:  # deleted meanwhile
        raise not_found("Post not found", "post_not_found") from None
    if added is not None:  # the set is dropped, not edited (as likes: racing edits could cross)
        await invalidate(stores, bookmarked_key(stores, user_id))
    return await get_post(stores, post_id, user_id)


async def unbookmark(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent: removing a bookmark that is not there changes nothing."""
    if await stores.sql.posts.unbookmark_post(stores.pg, user_id=user_id, post_id=post_id) is not None:
        await invalidate(stores, bookmarked_key(stores, user_id))
    return await get_post(stores, post_id, user_id)


async def bookmarks(stores: Stores, user_id: int, limit: int, before: int | None) -> dict[str, Any]:
    """The user's bookmarked posts, newest bookmark first (keyset on the bookmark). Posts a
    block now hides are left out of the page; deleted ones went with their bookmark."""
    rows = stores.sql.posts.bookmark_page(stores.pg, user_id=user_id, before=before or MAX_ROW_ID, lim=limit + 1)
    result = page([r async for r in rows], limit, lambda r: [r["id"]])
    result["items"] = await hydrate(stores, [r["post_id"] for r in result["items"]], user_id)
    return result
