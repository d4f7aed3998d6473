"""A resume (asked by the client, or done by the server after its bus reconnected) that runs
while a later event waits for an earlier one: every event still goes out once, in order."""

from datetime import UTC, datetime

from nubo_backend.jsonutil import dumps
from nubo_backend.realtime.connection import GAP_WAIT
from nubo_backend.realtime.events import frame, user_channel
from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_event, open_ws, silent
from tests.factories import announce_event, make_user


async def _journaled_but_never_heard(stores: Stores, user_id: int, ids: list[int]) -> None:
    """Events as a relay leaves them when their publication is lost: numbered and journaled."""
    async with stores.pg.acquire() as conn:
        await conn.execute("INSERT INTO event_sequences VALUES ($1, $2)", user_id, max(ids))
    await stores.mongo["events"].insert_many([
        {"user_id": user_id, "id": i, "type": "n", "data": {"n": i}, "created_at": datetime.now(UTC)} for i in ids
    ])


async def test_an_event_waiting_for_its_predecessor_is_not_sent_again_after_a_resume(
        stores: Stores, server) -> None:
    alice = await make_user(stores)
    ws = await open_ws(server, alice)  # ready: last_event_id 0
    await _journaled_but_never_heard(stores, alice.id, [1, 2])
    # Event 2 arrives live without 1: it waits (for GAP_WAIT) in the socket's pending set...
    await stores.redis.publish(user_channel(stores, alice.id), dumps(frame(2, "n", {"n": 2})))
    # ...and a resume from 0 replays 1 and 2 from the journal before that wait is over.
    await ws.send('{"type": "resume", "last_event_id": 0}')
    assert [(await next_event(ws))["id"] for _ in range(2)] == [1, 2]
    await announce_event(stores, [alice.id], "n", {"n": 3})
    assert (await next_event(ws))["id"] == 3
    # Past the wait, 2 (already sent) must not go out again, nor 3 after the next event.
    assert await silent(ws, GAP_WAIT * 2)
    await announce_event(stores, [alice.id], "n", {"n": 4})
    assert (await next_event(ws))["id"] == 4
    assert await silent(ws, GAP_WAIT * 2)
