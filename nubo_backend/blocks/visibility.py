"""What a block or a mute hides, asked by every other domain before it shows or tells.

Kept apart from `service.py` (the block and mute actions) so that posts, users, messaging
and search can ask without importing the actions, which themselves use those domains.

A viewer's hidden set (everyone a block stands between them and, either way) is cached in
Redis (`hidden:<user id>`), shared by every instance and invalidated by a block or an
unblock of either person before it answers: a block made on one instance holds at once on
all of them. Questions asked inside a write (may this message go? who hears this
notification?) read PostgreSQL in the writing transaction instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import asyncpg

from nubo_backend.edge.errors import NuboError
from nubo_backend.outbox import Event
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import get_members_or_load

NOBODY: frozenset[int] = frozenset()


def hidden_key(stores: Stores, user_id: int) -> str:
    return stores.keys("hidden", user_id)


def blocked_error() -> NuboError:
    return NuboError(403, "blocked", "A block stands between you and this user")


async def hidden_from(
    stores: Stores, viewer_id: int | None, cached: Collection[bytes] | None = None
) -> frozenset[int]:
    """The users the viewer must not see, nor be seen by (empty when signed out).

    `cached`: the members of `hidden_key` as a read of the viewer's page already found them
    (`cache.read_view`'s `whole_set`), so that they cost no round trip of their own."""
    if viewer_id is None:
        return NOBODY

    async def load() -> list[int]:
        return [r["id"] async for r in stores.sql.blocks.hidden_user_ids(stores.pg, user_id=viewer_id)]

    members = await get_members_or_load(stores, hidden_key(stores, viewer_id), load, cached)
    return frozenset(int(m) for m in members) if members else NOBODY


async def muted_by(stores: Stores, user_id: int) -> frozenset[int]:
    """The users this one muted (read only by the muter's own lists)."""
    return frozenset([r["id"] async for r in stores.sql.blocks.muted_user_ids(stores.pg, user_id=user_id)])


async def blocked_between(conn: asyncpg.Connection, stores: Stores, user_id: int, other_id: int) -> bool:
    return bool(await stores.sql.blocks.blocked_between(conn, user_id=user_id, other_id=other_id))


async def refuse_if_blocked(conn: asyncpg.Connection, stores: Stores, user_id: int, other_id: int) -> None:
    """403 `blocked` for an action (follow, message) that would cross a block, either way."""
    if user_id != other_id and await blocked_between(conn, stores, user_id, other_id):
        raise blocked_error()


async def refuse_if_any_blocked(
    conn: asyncpg.Connection, stores: Stores, user_id: int, user_ids: Iterable[int]
) -> None:
    """403 `blocked` when user_id would put into a group anyone a block stands between them
    and, either way: a group of one's own is no way around a block (nor a way to reach
    someone who blocked you, with a title of your choosing)."""
    wanted = list(user_ids)
    if len(await without_blocked(conn, stores, user_id, wanted)) != len(dict.fromkeys(wanted)):
        raise blocked_error()


async def without_blocked(conn: asyncpg.Connection, stores: Stores, user_id: int, user_ids: Iterable[int]) -> list[int]:
    """user_ids minus those a block stands between user_id and: the audience of user_id's
    messages, typing and read receipts in a group."""
    wanted = list(dict.fromkeys(user_ids))
    others = [uid for uid in wanted if uid != user_id]
    if not others:
        return wanted
    blocked = {r["id"] async for r in stores.sql.blocks.blocked_among(conn, user_id=user_id, user_ids=others)}
    return [uid for uid in wanted if uid not in blocked]


async def heard(conn: asyncpg.Connection, stores: Stores, actor_id: int, *events: Event | None) -> list[Event | None]:
    """The events with every notification that must not reach its recipient dropped: no
    notification crosses a block, and none reaches someone who muted the actor."""
    recipients = {uid for e in events if e is not None and e.notification for uid in e.recipients}
    if not recipients:
        return list(events)
    rows = stores.sql.blocks.silenced_among(conn, actor_id=actor_id, user_ids=sorted(recipients))
    silenced = {r["id"] async for r in rows}
    if not silenced:
        return list(events)
    kept: list[Event | None] = []
    for event in events:
        if event is not None and event.notification:
            audience = [uid for uid in event.recipients if uid not in silenced]
            event = Event(audience, event.type, event.data, event.notification) if audience else None
        kept.append(event)
    return kept
