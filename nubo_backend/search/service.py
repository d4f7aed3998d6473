"""Search: people by username and display name, posts by their words. Both ranked and paged
by keyset over (rank, id), so a page never repeats or skips a match of the previous one."""

from __future__ import annotations

from typing import Any

from nubo_backend.blocks.visibility import hidden_from
from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.pagination import MAX_ROW_ID, decode_cursor, page
from nubo_backend.posts.service import hydrate, public_user
from nubo_backend.stores import Stores

MAX_QUERY_LENGTH = 200  # longer is refused (422), not cut: a cut query would find other things


def _rank_cursor(cursor: str | None) -> tuple[float, int] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    rank, row_id = key
    if (type(rank) not in (int, float) or type(row_id) is not int or not 0 < row_id <= MAX_ROW_ID
            or rank != rank or abs(rank) > 1e30):  # (NaN and infinities are no rank)
        raise NuboError(400, "invalid_cursor", "Invalid cursor")
    return float(rank), row_id


async def search_users(stores: Stores, q: str, limit: int, cursor: str | None,
                       viewer_id: int | None = None) -> dict[str, Any]:
    """Exact username first, then usernames starting with q, display names with a word
    starting with q, then q anywhere; case and accents ignored. People a block stands between
    the viewer and are left out (a page may then hold fewer than `limit`)."""
    hidden = await hidden_from(stores, viewer_id)
    after = _rank_cursor(cursor)
    after_rank, after_id = (int(after[0]), after[1]) if after else (-1, 0)
    rows = stores.sql.search.search_users(stores.pg, q=q, after_rank=after_rank, after_id=after_id,
                                          lim=limit + 1)
    found = [{**public_user(r), "rank": r["rank"]} async for r in rows]
    result = page(found, limit, lambda user: [user["rank"], user["id"]])
    result["items"] = [user for user in result["items"] if user["id"] not in hidden]
    for user in result["items"]:
        del user["rank"]
    return result


async def search_posts(stores: Stores, q: str, limit: int, cursor: str | None,
                       viewer_id: int | None) -> dict[str, Any]:
    """Posts containing every word of q (case and accents ignored), best match first."""
    after = _rank_cursor(cursor)
    after_rank, after_id = after if after else (float("inf"), MAX_ROW_ID)
    rows = stores.sql.search.search_post_ids(stores.pg, q=q, after_rank=after_rank, after_id=after_id,
                                             lim=limit + 1)
    found = [(r["rank"], r["id"]) async for r in rows]
    result = page(found, limit, lambda match: [match[0], match[1]])
    result["items"] = await hydrate(stores, [post_id for _, post_id in result["items"]], viewer_id)
    return result
