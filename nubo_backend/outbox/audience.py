"""Live-only events for an author's audience, walked in bounded pieces.

A post to followers is one outbox row (`AudienceEvent`), whatever the number of followers.
The relay serves it a piece at a time (followers in follow-id order from the row's cursor):
each piece drops the followers' cached feed first pages, and publishes the event to those of
them holding a socket. The cursor is saved with each piece, so a relay that stops halfway
resumes where it was and each piece goes out once (sockets are told nothing twice but for a
piece redone after a crash, which a client shows once: the post's id is in the frame).
"""

from __future__ import annotations

import asyncpg

from nubo_backend.jsonutil import dumps
from nubo_backend.realtime.events import user_channel
from nubo_backend.realtime.presence import held_among
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import invalidate


def live_frame(event_type: str, data_json: str) -> bytes:
    """A live-only frame: `{"id": null, "type", "data"}` (never numbered, never resumed)."""
    return b'{"id":null,"type":%s,"data":%s}' % (dumps(event_type), data_json.encode())


async def serve_piece(conn: asyncpg.Connection, stores: Stores, row: asyncpg.Record, budget: int) -> tuple[int, bool]:
    """Serve the next piece (at most budget followers) of an audience row in conn's open
    transaction; returns (followers served, whether the audience is done)."""
    q = stores.sql.outbox
    author_id, after = row["audience_of"], row["audience_after"]
    piece = [r async for r in q.audience_page(conn, author_id=author_id, after=after, lim=budget)]
    followers = [r["follower_id"] for r in piece]
    if followers:
        await _drop_feeds(stores, followers)
        held = await held_among(stores, followers)
        if held:
            await _publish(stores, held, live_frame(row["type"], row["data"]))
    if len(piece) < budget:
        return len(piece), True
    await q.audience_advanced(conn, id=row["id"], after=piece[-1]["follow_id"])
    return len(piece), False


async def _drop_feeds(stores: Stores, followers: list[int]) -> None:
    # The followers' cached first pages lack the post: dropped here, a piece at a time, not in
    # the author's request (which would cost it O(followers)).
    from nubo_backend.posts.service import feed_key  # posts imports the outbox to announce

    await invalidate(stores, *(feed_key(stores, uid) for uid in followers))


async def _publish(stores: Stores, user_ids: list[int], wire: bytes) -> None:
    async with stores.redis.pipeline(transaction=False) as pipe:
        for uid in user_ids:
            pipe.publish(user_channel(stores, uid), wire)
        await pipe.execute()
