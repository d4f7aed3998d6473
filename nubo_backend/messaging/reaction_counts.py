"""Reading reactions on messages: which emoji a reaction may be, and the counts shown with
each message (the actions are in reactions.py)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg
import regex

from nubo_backend.edge.errors import unprocessable
from nubo_backend.stores import Stores

# One extended grapheme cluster (a flag, a skin-toned or ZWJ family emoji is one) that is an
# emoji: pictographic, a regional-indicator pair, or a keycap.
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")
MAX_EMOJI_CHARS = 32  # the longest ZWJ sequences are ~10 code points; the column allows 32


def check_emoji(emoji: str) -> str:
    """The emoji as given, or 422 when it is not one emoji grapheme."""
    if not (0 < len(emoji) <= MAX_EMOJI_CHARS and _GRAPHEME.fullmatch(emoji) and _EMOJI.search(emoji)):
        raise unprocessable([{"field": "emoji", "message": "One emoji"}], "Invalid input: emoji")
    return emoji


async def reactions_for(
    conn: asyncpg.Connection | asyncpg.Pool, stores: Stores, message_ids: list[int], viewer_id: int,
    hidden: Collection[int] = (),
) -> dict[int, list[dict[str, Any]]]:
    """Per message: `[{emoji, count, reacted_by_me}]`, first reaction first; people a block
    hides from the viewer are not counted."""
    if not message_ids:
        return {}
    rows = stores.sql.messaging.reaction_counts(conn, message_ids=message_ids, viewer_id=viewer_id,
                                                hidden_ids=list(hidden))
    found: dict[int, list[dict[str, Any]]] = {}
    async for r in rows:
        found.setdefault(r["message_id"], []).append(
            {"emoji": r["emoji"], "count": r["count"], "reacted_by_me": r["reacted_by_me"]})
    return found
