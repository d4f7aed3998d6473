"""@mentions in posts and comments: each person named is notified once (`mention.created`)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from nubo_backend.outbox import Event, notification
from nubo_backend.stores import Stores

# Same alphabet and length as usernames; not preceded by a word character, so that an
# e-mail address such as bob@example.com mentions nobody.
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{3,30})(?![\w])")
MAX_MENTIONS = 20  # per text: bounds the fan-out a single post can cause


def mentioned_usernames(text: str) -> list[str]:
    """Distinct usernames mentioned in text, lower-cased, in order of appearance."""
    names = dict.fromkeys(match.lower() for match in MENTION.findall(text))
    return list(names)[:MAX_MENTIONS]


async def mention_notifications(
    conn: asyncpg.Connection, stores: Stores, author_id: int, text: str, data: dict[str, Any]
) -> list[Event | None]:
    """A notification for everyone the text mentions (the author excepted, by `notification`)."""
    names = mentioned_usernames(text)
    if not names:
        return []
    rows = stores.sql.users.ids_by_usernames(conn, usernames=names)
    return [notification(row["id"], "mention.created", {**data, "actor_id": author_id}) async for row in rows]
