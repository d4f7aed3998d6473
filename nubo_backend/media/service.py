"""Media rules: who may upload, attach and read, and when files go. No HTTP types here.

An upload belongs to its uploader and to nothing else until it is attached, once, to one
post or one message of theirs (`attach_to_post`, `attach_to_message`, called inside the
caller's transaction so that the post or message and its media commit together). From then
on it is read as its parent is: a post's by anyone, a message's by the conversation's
members. An upload left unattached for `media_unattached_ttl` seconds is swept.

Files are removed after the rows that name them: deleting a media row (directly or by
cascade from its post, message or owner) queues its keys in media_garbage in the same
transaction (a trigger, sql/migrations/0007_media.sql); `collect_garbage` deletes the files,
then the queue entries. A crash in between leaves keys queued, never a row without a file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from nubo_backend.auth.ratelimit import hit
from nubo_backend.blocks.visibility import hidden_from
from nubo_backend.edge.errors import NuboError, forbidden, not_found, unprocessable
from nubo_backend.media.imaging import ImageRefused
from nubo_backend.media.storage import new_key
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.media")

MAX_ATTACHED = 4
HOUR = 3600
SWEEP_BATCH = 500
PUBLIC_CACHE = "public, max-age=31536000, immutable"
PRIVATE_CACHE = "private, max-age=31536000, immutable"

Conn = asyncpg.Connection | asyncpg.Pool


def public_media(row: Any) -> dict[str, Any]:
    """The media object in API responses, events and cached posts."""
    return {
        "id": row["id"],
        "type": row["kind"],
        "content_type": row["content_type"],
        "width": row["width"],
        "height": row["height"],
        "size_bytes": row["size_bytes"],
        "blurhash": row["blurhash"],
        "url": f"/media/{row['id']}",
        "thumbnail_url": f"/media/{row['id']}/thumbnail",
        "thumbnail": {"width": row["thumb_width"], "height": row["thumb_height"]},
    }


# --- upload ----------------------------------------------------------------------------


async def check_upload_quota(stores: Stores, user_id: int) -> None:
    """Count one upload against the user's hourly allowance; 429 past it."""
    await hit(stores.redis, stores.keys, "media_upload", {"account": str(user_id)},
              stores.settings.media_uploads_per_hour, HOUR)


async def upload(stores: Stores, user_id: int, data: bytes) -> dict[str, Any]:
    """Check, clean and store one image; nothing is stored when it is refused."""
    try:
        image = await stores.media.images.process(data)
    except ImageRefused as refused:
        raise NuboError(422, refused.code, refused.message) from None
    original_key, thumb_key = new_key(image.extension), new_key(image.extension)
    storage = stores.media.storage
    try:
        await asyncio.gather(
            storage.put(original_key, image.original.data, image.content_type),
            storage.put(thumb_key, image.thumbnail.data, image.content_type),
        )
        row = await stores.sql.media.insert_media(
            stores.pg, owner_id=user_id, content_type=image.content_type,
            width=image.original.width, height=image.original.height,
            size_bytes=len(image.original.data), blurhash=image.blurhash,
            storage_key=original_key, etag=image.original.etag,
            thumb_key=thumb_key, thumb_etag=image.thumbnail.etag,
            thumb_width=image.thumbnail.width, thumb_height=image.thumbnail.height,
        )
    except BaseException:
        await asyncio.shield(storage.delete([original_key, thumb_key]))
        raise
    return public_media(row)


# --- attach, and what posts and messages show -------------------------------------------


async def _attach(conn: asyncpg.Connection, stores: Stores, query: Any, user_id: int,
                  parent: dict[str, int], media_ids: list[int]) -> list[dict[str, Any]]:
    if not media_ids:
        return []
    if len(media_ids) > MAX_ATTACHED:
        raise unprocessable([{"field": "media_ids", "message": f"At most {MAX_ATTACHED} media"}])
    if len(set(media_ids)) != len(media_ids):
        raise unprocessable([{"field": "media_ids", "message": "The same media is given twice"}])
    rows = [r async for r in query(conn, owner_id=user_id, ids=media_ids, **parent)]
    if len(rows) != len(media_ids):
        await _refuse_attach(conn, stores, user_id, media_ids, {r["id"] for r in rows})
    return [public_media(r) for r in sorted(rows, key=lambda r: r["position"])]


async def _refuse_attach(conn: asyncpg.Connection, stores: Stores, user_id: int,
                         media_ids: list[int], attached: set[int]) -> None:
    """Say why an id could not be attached (the caller's transaction then rolls back)."""
    states = {r["id"]: r async for r in stores.sql.media.media_states(conn, ids=media_ids)}
    for media_id in media_ids:
        if media_id in attached:
            continue
        state = states.get(media_id)
        if state is None:
            raise not_found(f"Media {media_id} not found", "media_not_found")
        if state["owner_id"] != user_id:
            raise forbidden(f"Media {media_id} is not yours", "not_media_owner")
        raise NuboError(409, "media_already_attached", f"Media {media_id} is already attached")
    raise NuboError(409, "media_already_attached", "Media already attached")  # unreachable in practice


async def attach_to_post(conn: asyncpg.Connection, stores: Stores, user_id: int, post_id: int,
                         media_ids: list[int]) -> list[dict[str, Any]]:
    """Attach the user's own unattached media to their new post, in the given order."""
    return await _attach(conn, stores, stores.sql.media.attach_to_post, user_id,
                         {"post_id": post_id}, media_ids)


async def attach_to_message(conn: asyncpg.Connection, stores: Stores, user_id: int, message_id: int,
                            media_ids: list[int]) -> list[dict[str, Any]]:
    """Attach the user's own unattached media to their new message, in the given order."""
    return await _attach(conn, stores, stores.sql.media.attach_to_message, user_id,
                         {"message_id": message_id}, media_ids)


async def _grouped(rows: Any) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    async for row in rows:
        grouped.setdefault(row["parent_id"], []).append(public_media(row))
    return grouped


async def media_for_posts(conn: Conn, stores: Stores, post_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each post's media, in order; posts without any are absent."""
    if not post_ids:
        return {}
    return await _grouped(stores.sql.media.media_of_posts(conn, post_ids=post_ids))


async def media_for_messages(conn: Conn, stores: Stores,
                             message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not message_ids:
        return {}
    return await _grouped(stores.sql.media.media_of_messages(conn, message_ids=message_ids))


async def delete_for_post(conn: Conn, stores: Stores, post_id: int) -> None:
    """Inside the caller's transaction: the post's media rows go, their files are queued.
    (Deleting the post row does the same by cascade.) Call `collect_later` after the commit."""
    await stores.sql.media.delete_for_post(conn, post_id=post_id)


async def delete_for_message(conn: Conn, stores: Stores, message_id: int) -> None:
    """Inside the caller's transaction (a message is kept as a tombstone, so no cascade)."""
    await stores.sql.media.delete_for_message(conn, message_id=message_id)


# --- files going -----------------------------------------------------------------------


async def collect_garbage(stores: Stores, batch: int = SWEEP_BATCH) -> int:
    """Delete the files of deleted media rows; returns how many keys were handled."""
    done = 0
    while True:
        async with stores.pg.acquire() as conn, conn.transaction():
            keys = [r["storage_key"] async for r in stores.sql.media.garbage_batch(conn, lim=batch)]
            if not keys:
                return done
            await stores.media.storage.delete(keys)
            await stores.sql.media.forget_garbage(conn, keys=keys)
        done += len(keys)
        if len(keys) < batch:
            return done


def collect_later(stores: Stores) -> None:
    """After a commit that deleted media: remove their files without holding the response."""
    stores.run_in_background(_collect_quietly(stores))


async def _collect_quietly(stores: Stores) -> None:
    try:
        await collect_garbage(stores)
    except Exception:  # noqa: BLE001 - the keys stay queued for the next sweep
        log.warning("media files not collected yet", exc_info=True)


async def sweep_unattached(stores: Stores, now: datetime | None = None) -> int:
    """Remove uploads left unattached longer than media_unattached_ttl, and their files.
    Returns how many uploads went."""
    before = (now or datetime.now(UTC)) - timedelta(seconds=stores.settings.media_unattached_ttl)
    removed = 0
    while True:
        count = await stores.sql.media.delete_unattached(stores.pg, before=before, lim=SWEEP_BATCH)
        removed += count
        if count < SWEEP_BATCH:
            break
    await collect_garbage(stores)
    return removed


async def sweep_periodically(stores: Stores) -> None:
    """The instance's cleanup loop: every media_sweep_interval seconds, until cancelled.
    Every instance runs one; they skip each other's locked rows."""
    while True:
        try:
            await asyncio.sleep(stores.settings.media_sweep_interval)
        except asyncio.CancelledError:
            return  # the server stopping: a normal end (Sanic warns of app tasks ending cancelled)
        try:
            removed = await sweep_unattached(stores)
            if removed:
                log.info("unattached media removed", extra={"count": removed})
        except Exception:  # noqa: BLE001 - a store hiccup must not end the loop
            log.warning("media sweep failed; next one in %ss", stores.settings.media_sweep_interval,
                        exc_info=True)


# --- serve -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    data: bytes
    content_type: str
    etag: str
    cache_control: str
    not_modified: bool = False


async def _check_reader(stores: Stores, row: Any, viewer_id: int | None) -> str:
    """Who may read: a post's media anyone, a message's the members, an unattached upload
    its owner; and media are hidden wherever their post or message is. Returns the
    Cache-Control a reader gets."""
    if row["post_id"] is not None:
        if row["author_id"] in await hidden_from(stores, viewer_id):  # as GET /posts/{id}: 404
            raise _hidden()
        return PUBLIC_CACHE
    if row["conversation_id"] is not None:
        if viewer_id is None:
            raise NuboError(401, "missing_authorization", "Authorization header manquant")
        membership = await stores.sql.messaging.membership(
            stores.pg, conversation_id=row["conversation_id"], user_id=viewer_id)
        if membership is None or membership["role"] is None:
            raise forbidden("You are not a member of this conversation", "not_a_member")
        # A group's history leaves out what a block hides (a direct conversation keeps it).
        if membership["kind"] == "group" and row["sender_id"] in await hidden_from(stores, viewer_id):
            raise _hidden()
        return PRIVATE_CACHE
    if viewer_id != row["owner_id"]:  # an unattached upload is nobody else's business
        raise _hidden()
    return PRIVATE_CACHE


def _hidden() -> NuboError:
    # The very answer an id that never existed gets: ids are sequential, and a 403 `blocked`
    # would tell the viewer that this one is a photo from the person on the other side of the
    # block (and when they sent it), which is what the block hides.
    return not_found("Media not found", "media_not_found")


async def read_media(stores: Stores, viewer_id: int | None, media_id: int, thumbnail: bool,
                     if_none_match: str | None = None) -> Served:
    """The file to serve, or `not_modified` when the reader's copy (If-None-Match) is current."""
    row = await stores.sql.media.media_for_serving(stores.pg, media_id=media_id)
    if row is None:
        raise not_found("Media not found", "media_not_found")
    cache_control = await _check_reader(stores, row, viewer_id)
    key, etag = (row["thumb_key"], row["thumb_etag"]) if thumbnail else (row["storage_key"], row["etag"])
    etag = f'"{etag}"'
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Served(b"", row["content_type"], etag, cache_control, not_modified=True)
    data = await stores.media.storage.get(key)
    if data is None:
        log.error("media file missing", extra={"media_id": media_id, "key": key})
        raise not_found("Media not found", "media_not_found")
    return Served(data, row["content_type"], etag, cache_control)
