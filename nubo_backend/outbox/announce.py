"""Writing events in the announcing transaction: numbered per recipient, kept in the outbox.

Personal events (`Event`) are numbered per recipient and written in the lanes of their
recipients (`lanes.lane_of`), in rows of at most `lanes.ROW_RECIPIENTS` recipients, so the
relay's work per row is bounded. An event for an author's followers (`AudienceEvent`) is one
row whatever their number: live-only, the relay walks the audience in pieces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from bson import ObjectId

from nubo_backend.jsonutil import dumps_str
from nubo_backend.observability.tracing import announcing_trace_context
from nubo_backend.outbox.lanes import ROW_RECIPIENTS, audience_lane, lane_of
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


@dataclass(frozen=True)
class AudienceEvent:
    """A live-only event for the author's followers (less those who muted the author): sent to
    those connected when the relay reaches them, never numbered or journaled. Clients reload
    the feed after a reconnect (docs/realtime.md)."""

    author_id: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def notification(user_id: int, event_type: str, data: dict[str, Any]) -> Event | None:
    """A notification for user_id, or None when it would tell users of their own action."""
    if data.get("actor_id") == user_id:
        return None
    return Event([user_id], event_type, {**data, "notification_id": str(ObjectId())}, notification=True)


async def announce(conn: asyncpg.Connection, stores: Stores, *events: Event | AudienceEvent | None) -> None:
    """Number and record events in conn's open transaction; the relay delivers them after
    the commit (the outbox's insert trigger wakes it). Call it once per transaction, as its
    last statement: every recipient's sequence row is locked in one sorted pass, so
    announcing transactions never deadlock."""
    q = stores.sql.outbox
    lanes = stores.settings.relay_lanes
    trace_context = announcing_trace_context()  # (None, at once, with tracing off)
    for event in events:
        if isinstance(event, AudienceEvent):
            await q.announce_to_audience(conn, author_id=event.author_id, type=event.type,
                                         data=dumps_str(event.data), lane=audience_lane(event.author_id, lanes),
                                         trace_context=trace_context)
    wanted = [
        Event(list(dict.fromkeys(e.recipients)), e.type, e.data, e.notification)
        for e in events if isinstance(e, Event) and e.recipients
    ]
    if not wanted:
        return
    if len(wanted) == 1:
        event = wanted[0]
        await q.announce_one(conn, user_ids=list(event.recipients), type=event.type,
                             data=dumps_str(event.data), notification=event.notification,
                             lanes=lanes, row_max=ROW_RECIPIENTS, trace_context=trace_context)
        return
    counts = Counter(uid for event in wanted for uid in event.recipients)
    rows = q.take_event_ids(conn, user_ids=list(counts), counts=list(counts.values()))
    # Each user's ids are last - count + 1 .. last, handed out in the order of `events`.
    next_id = {row["user_id"]: row["last_id"] - counts[row["user_id"]] + 1 async for row in rows}
    records = []
    for event in wanted:
        by_lane: dict[int, list[tuple[int, int]]] = {}
        for uid in event.recipients:
            by_lane.setdefault(lane_of(uid, lanes), []).append((uid, next_id[uid]))
            next_id[uid] += 1
        data = dumps_str(event.data)
        for lane, placed in sorted(by_lane.items()):
            for start in range(0, len(placed), ROW_RECIPIENTS):
                piece = placed[start:start + ROW_RECIPIENTS]
                records.append({"type": event.type, "data": data, "recipients": [uid for uid, _ in piece],
                                "event_ids": [eid for _, eid in piece], "notification": event.notification,
                                "lane": lane, "trace_context": trace_context})
    await q.insert_events(conn, records)
