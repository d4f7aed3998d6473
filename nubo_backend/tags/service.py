"""Hashtag reads: a tag's posts, and the tags trending over the last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orjson import Fragment

from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.posts.service import hydrate
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import get_or_load
from nubo_backend.tags.hashtags import MAX_TAG_LENGTH, TAG, fold_tag

TRENDING_SIZE = 20
TRENDING_WINDOW = timedelta(hours=24)


def tag_from_path(segment: str) -> str:
    """The tag named in a URL (with or without its `#`), folded; 422 if it cannot be a tag."""
    tag = fold_tag(segment.removeprefix("#"))
    if not TAG.fullmatch("#" + tag) or tag.isdigit():
        raise NuboError(422, "invalid_tag",
                        f"A tag is 1 to {MAX_TAG_LENGTH} letters, digits or underscores, not only digits")
    return tag


async def tag_posts(stores: Stores, tag: str, limit: int, before: int | None,
                    viewer_id: int | None) -> dict[str, Any]:
    """A tag's posts, newest first, hydrated as every list of posts is."""
    rows = stores.sql.tags.tag_post_ids(stores.pg, tag=tag, before=before or MAX_ROW_ID, lim=limit + 1)
    result = page([r["id"] async for r in rows], limit, lambda post_id: [post_id])
    result["items"] = await hydrate(stores, result["items"], viewer_id)
    return result


def trending_key(stores: Stores) -> str:
    return stores.keys("tags", "trending")


async def trending(stores: Stores) -> Fragment:
    """The tags used most in the last 24 hours. Cached for `cache_ttl` and never invalidated:
    a count over a day may be minutes old, and dropping it on every tagged post would
    recount the day under exactly the load that makes a tag trend."""

    async def load() -> dict[str, Any]:
        since = datetime.now(UTC) - TRENDING_WINDOW
        rows = stores.sql.tags.trending_tags(stores.pg, since=since, lim=TRENDING_SIZE)
        return {"items": [{"tag": r["tag"], "uses": r["uses"]} async for r in rows]}

    return Fragment(await get_or_load(stores, trending_key(stores), load))
