"""Link preview cards for posts (and, in messages.py, messages): the first link in a post gets a card, fetched after the
commit (never in the request), cached per URL (link_previews, `link_preview_cache_ttl`), and
added to the post with a `post.updated` event to its author and to those who reposted or
quoted it. The card's image is fetched under the same rules, checked and re-encoded by the
media pipeline and served by us (`GET /previews/{id}/image`), never hot-linked."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from nubo_backend.blocks.visibility import without_blocked
from nubo_backend.edge.errors import not_found
from nubo_backend.jsonutil import dumps_str
from nubo_backend.media.imaging import ImageRefused
from nubo_backend.media.storage import new_key
from nubo_backend.outbox import Event, announce
from nubo_backend.posts.service import post_changed
from nubo_backend.previews.cards import decode, parse_card
from nubo_backend.previews.fetch import FetchRefused, fetch
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.previews")

_LINK = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\"”’»"
MAX_URL = 2048
HTML_TYPES = ("text/html", "application/xhtml+xml")


def first_link(text: str) -> str | None:
    """The first http(s) link in text, without the punctuation that ends a sentence."""
    match = _LINK.search(text)
    if match is None:
        return None
    url = match.group(0).rstrip(_TRAILING)
    return url if len(url) <= MAX_URL else None


def preview_post_later(stores: Stores, post_id: int, body: str, edited: bool = False) -> None:
    """After a post is committed (created or edited): give it its first link's card, in the
    background. An edit that drops the link drops the card."""
    url = first_link(body)
    if url is not None or edited:
        stores.run_in_background(_preview_post(stores, post_id, url))


def public_card(row: Any) -> dict[str, Any]:
    return {
        "url": row["url"],
        "title": row["title"],
        "description": row["description"],
        "image": f"/previews/{row['id']}/image" if row["has_image"] else None,
    }


async def _preview_post(stores: Stores, post_id: int, url: str | None) -> None:
    try:
        card = await card_for(stores, url) if url is not None else None
        async with stores.pg.acquire() as conn, conn.transaction():
            row = await stores.sql.previews.set_post_preview(
                conn, post_id=post_id, url=url, preview=dumps_str(card) if card is not None else None)
            if row is None:  # gone, edited since, or the card it already has
                return
            author_id = row["author_id"]
            others = [r["user_id"] async for r in stores.sql.posts.edit_audience(conn, post_id=post_id,
                                                                               author_id=author_id)]
            audience = await without_blocked(conn, stores, author_id, [author_id, *others])
            await announce(conn, stores, Event(audience, "post.updated", {"post_id": post_id, "preview": card}))
        await post_changed(stores, post_id)
    except Exception:  # a background job: nobody waits for it, so it logs instead
        log.exception("link preview failed", extra={"post_id": post_id})


async def card_for(stores: Stores, url: str) -> dict[str, Any] | None:
    """The card for url: cached while fresh (a failure too), else fetched now."""
    row = await stores.sql.previews.preview_by_url(stores.pg, url=url)
    ttl = stores.settings.link_preview_cache_ttl
    if row is None or (datetime.now(UTC) - row["fetched_at"]).total_seconds() >= ttl:
        row = await _fetch_card(stores, url)
    return public_card(row) if row["ok"] else None


def _fetch_options(stores: Stores) -> dict[str, Any]:
    settings = stores.settings
    return {"time_cap": settings.link_preview_timeout, "max_redirects": settings.link_preview_max_redirects,
            "allow_private": settings.link_preview_allow_private}


async def _fetch_card(stores: Stores, url: str) -> Any:
    settings = stores.settings
    parsed = None
    try:
        page = await fetch(url, accept="text/html,application/xhtml+xml;q=0.9", **_fetch_options(stores),
                           max_bytes=settings.link_preview_max_bytes)
        if page.content_type in HTML_TYPES:
            parsed = parse_card(decode(page.body, page.charset), url)
    except FetchRefused as refused:
        log.info("link preview refused", extra={"url": url, "reason": str(refused)})
    image = await _image(stores, parsed["image_url"]) if parsed and parsed["image_url"] else None
    content_type, storage_key, etag = image or (None, None, None)
    return await stores.sql.previews.store_preview(
        stores.pg, url=url, ok=parsed is not None,
        title=parsed["title"] if parsed else None, description=parsed["description"] if parsed else None,
        content_type=content_type, storage_key=storage_key, etag=etag)


async def _image(stores: Stores, image_url: str) -> tuple[str, str, str] | None:
    """The card's image, re-encoded card-sized (the upload pipeline's thumbnail) and stored:
    (content type, storage key, etag), or None when it cannot be had or is no image."""
    try:
        got = await fetch(image_url, accept="image/*", **_fetch_options(stores),
                          max_bytes=stores.settings.media_max_upload_bytes + 1)
        if got.truncated or len(got.body) > stores.settings.media_max_upload_bytes:
            raise FetchRefused("image too large")
        image = await stores.media.images.process(got.body)
    except (FetchRefused, ImageRefused) as refused:
        log.info("link preview image refused", extra={"url": image_url, "reason": str(refused)})
        return None
    key = new_key(image.extension)
    await stores.media.storage.put(key, image.thumbnail.data, image.content_type)
    return image.content_type, key, image.thumbnail.etag


async def preview_image(stores: Stores, preview_id: int) -> tuple[bytes, str, str]:
    """(bytes, content type, etag) of a card's image."""
    row = await stores.sql.previews.preview_image(stores.pg, preview_id=preview_id)
    data = await stores.media.storage.get(row["storage_key"]) if row is not None else None
    if data is None:
        raise not_found("Preview image not found", "preview_not_found")
    return data, row["content_type"], f'"{row["etag"]}"'
