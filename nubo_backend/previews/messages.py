"""Link preview cards for messages: the first link in a message gets a card as a post's does
(previews/service.py: fetched after the commit, cached per URL), delivered to the
conversation's members as `message.updated`."""

from __future__ import annotations

import logging

from nubo_backend.jsonutil import dumps_str
from nubo_backend.media import service as media
from nubo_backend.messaging.reaction_counts import reactions_for
from nubo_backend.messaging.service import _audience, _message
from nubo_backend.outbox import Event, announce
from nubo_backend.previews.service import card_for, first_link
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.previews")


def preview_message_later(stores: Stores, message_id: int, body: str, edited: bool = False) -> None:
    """After a message is committed (sent or edited): its first link's card, in the background."""
    url = first_link(body)
    if url is not None or edited:
        stores.run_in_background(_preview_message(stores, message_id, url))


async def _preview_message(stores: Stores, message_id: int, url: str | None) -> None:
    try:
        card = await card_for(stores, url) if url is not None else None
        async with stores.pg.acquire() as conn, conn.transaction():
            row = await stores.sql.previews.set_message_preview(
                conn, message_id=message_id, url=url, preview=dumps_str(card) if card is not None else None)
            if row is None or row["sender_id"] is None:  # gone, edited since, or the card it has
                return
            members = await _audience(conn, stores, row["conversation_id"], row["sender_id"])
            attached = await media.media_for_messages(conn, stores, [message_id])
            reacted = await reactions_for(conn, stores, [message_id], row["sender_id"])
            message = _message(row) | {"media": attached.get(message_id, []), "reactions": reacted.get(message_id, [])}
            await announce(conn, stores, Event(members, "message.updated", message))
    except Exception:  # a background job: nobody waits for it, so it logs instead
        log.exception("link preview failed", extra={"message_id": message_id})
