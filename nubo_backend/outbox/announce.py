"""Writing events in the announcing transaction: numbered per recipient, kept in the outbox."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from bson import ObjectId

from nubo_backend.jsonutil import dumps_str
from nubo_backend.stores import Stores


@dataclass(frozen=True)
class Event:
    """One event for each of its recipients (`{"id", "type", "data"}` on their sockets)."""

    recipients: Sequence[int]
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    # Also kept in the recipient's notification list (GET /notifications), under data's
    # `notification_id`.
    notification: bool = False


def notification(user_id: int, event_type: str, data: dict[str, Any]) -> Event | None:
    """A notification for user_id, or None when it would tell users of their own action."""
    if data.get("actor_id") == user_id:
        return None
    return Event([user_id], event_type, {**data, "notification_id": str(ObjectId())}, notification=True)


async def announce(conn: asyncpg.Connection, stores: Stores, *events: Event | None) -> None:
    """Number and record events in conn's open transaction; the relay delivers them after
    the commit (the outbox's insert trigger wakes it). Call it once per transaction, as its
    last statement: every recipient's sequence row is locked in one sorted pass, so
    announcing transactions never deadlock."""
    wanted = [
        Event(list(dict.fromkeys(e.recipients)), e.type, e.data, e.notification)
        for e in events if e is not None and e.recipients
    ]
    if not wanted:
        return
    q = stores.sql.outbox
    if len(wanted) == 1:
        event = wanted[0]
        await q.announce_one(conn, user_ids=list(event.recipients), type=event.type,
                             data=dumps_str(event.data), notification=event.notification)
        return
    counts = Counter(uid for event in wanted for uid in event.recipients)
    rows = q.take_event_ids(conn, user_ids=list(counts), counts=list(counts.values()))
    # Each user's ids are last - count + 1 .. last, handed out in the order of `events`.
    next_id = {row["user_id"]: row["last_id"] - counts[row["user_id"]] + 1 async for row in rows}
    records = []
    for event in wanted:
        ids = []
        for uid in event.recipients:
            ids.append(next_id[uid])
            next_id[uid] += 1
        records.append({"type": event.type, "data": dumps_str(event.data), "recipients": list(event.recipients),
                        "event_ids": ids, "notification": event.notification})
    await q.insert_events(conn, records)
