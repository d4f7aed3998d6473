"""Who liked a post: the people behind its like count, most recent like first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nubo_backend.errors import NuboError, not_found
from nubo_backend.pagination import MAX_ROW_ID, decode_cursor, page
from nubo_backend.stores import Stores

# Before every like: the first page's lower bound.
_END_OF_TIME = (datetime.max.replace(tzinfo=UTC), MAX_ROW_ID)


def decode_likers_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (liked_at, user id) a page continues from; 400 if the cursor was tampered with."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    liked_at, user_id = key
    try:
        when = datetime.fromisoformat(liked_at)
    except (TypeError, ValueError):
        when = None
    if when is None or when.tzinfo is None or type(user_id) is not int or not 0 < user_id <= MAX_ROW_ID:
        raise NuboError(400, "invalid_cursor", "Invalid cursor")
    return when, user_id


async def likers(stores: Stores, post_id: int, limit: int, before: tuple[datetime, int] | None) -> dict[str, Any]:
    if await stores.sql.posts.post_author_id(stores.pg, post_id=post_id) is None:
        raise not_found("Post not found", "post_not_found")
    before_at, before_user = before or _END_OF_TIME
    rows = stores.sql.posts.likers_page(
        stores.pg, post_id=post_id, before_at=before_at, before_user=before_user, lim=limit + 1
    )
    result = page([r async for r in rows], limit, lambda r: [r["liked_at"].isoformat(), r["id"]])
    result["items"] = [
        {"id": r["id"], "username": r["username"], "display_name": r["display_name"],
         "avatar_url": r["avatar_url"], "liked_at": r["liked_at"]}
        for r in result["items"]
    ]
    return result
