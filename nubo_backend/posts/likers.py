"""Who liked a post: the people behind its like count, most recent like first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nubo_backend.blocks.visibility import hidden_from
from nubo_backend.edge.errors import not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page, time_id_key
from nubo_backend.posts.service import public_user
from nubo_backend.stores import Stores

# Before every like: the first page's lower bound.
_END_OF_TIME = (datetime.max.replace(tzinfo=UTC), MAX_ROW_ID)


async def likers(
    stores: Stores, post_id: int, limit: int, before: tuple[datetime, int] | None,
    viewer_id: int | None = None,
) -> dict[str, Any]:
    """`before`: the (liked_at, user id) of the last liker of the previous page. As seen by
    viewer_id: 404 for a post a block hides, and likers a block hides are left out."""
    hidden = await hidden_from(stores, viewer_id)
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None or author_id in hidden:
        raise not_found("Post not found", "post_not_found")
    before_at, before_user = before or _END_OF_TIME
    rows = stores.sql.posts.likers_page(
        stores.pg, post_id=post_id, before_at=before_at, before_user=before_user, lim=limit + 1
    )
    result = page([r async for r in rows], limit, lambda r: time_id_key(r["liked_at"], r["id"]))
    result["items"] = [{**public_user(r), "liked_at": r["liked_at"]}
                       for r in result["items"] if r["id"] not in hidden]
    return result
