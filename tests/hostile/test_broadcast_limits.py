"""Issue #26, item 4: the public broadcast is a line of chat, at a rate, from whom it may be."""

from __future__ import annotations

from typing import Any

from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user


async def _kept(stores: Stores) -> list[str]:
    return [doc["text"] async for doc in stores.mongo["broadcasts"].find({})]


def _refusal(frame: Any, code: str) -> None:
    assert isinstance(frame, dict) and frame["type"] == "error" and frame["code"] == code, frame


async def test_a_broadcast_longer_than_a_line_is_refused_and_goes_nowhere(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_BROADCAST_MAX_CHARS": "100"})
    sender, listener = await make_user(stores), await make_user(stores)
    loud, ear = await open_ws(server, sender), await open_ws(server, listener)
    try:
        await loud.send("SYSTEM: your session expired, log in again at https://evil.example " + "x" * 60)
        _refusal(await next_frame(loud), "broadcast_too_long")
        await loud.send("short and sweet")
        assert await next_frame(ear) == "short and sweet"  # the long one never came before it
    finally:
        await loud.close()
        await ear.close()
    assert await _kept(stores) == ["short and sweet"]


async def test_one_sender_and_everyone_together_are_held_to_a_rate(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_BROADCAST_PER_USER": "2", "NUBO_BROADCAST_GLOBAL": "3"})
    first, second = await make_user(stores), await make_user(stores)
    one, two = await open_ws(server, first), await open_ws(server, second)
    try:
        for n in range(2):
            await one.send(f"one {n}")
            assert await next_frame(one) == f"one {n}"
        await one.send("one 2")
        refused = await next_frame(one)
        await two.send("two 0")  # the third line of the window for everyone
        while await next_frame(two) != "two 0":  # (after one's two lines)
            pass
        await two.send("two 1")
        globally = await next_frame(two)
    finally:
        await one.close()
        await two.close()
    _refusal(refused, "rate_limited")
    _refusal(globally, "rate_limited")
    assert sorted(await _kept(stores)) == ["one 0", "one 1", "two 0"]


async def test_broadcasting_can_be_kept_to_moderators(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_BROADCAST_SENDERS": "moderators"})
    user, moderator = await make_user(stores), await make_user(stores)
    await stores.pg.execute("UPDATE users SET role = 'moderator' WHERE id = $1", moderator.id)
    plain, mod = await open_ws(server, user), await open_ws(server, moderator)
    try:
        await plain.send("hello all")
        _refusal(await next_frame(plain), "not_a_moderator")
        await mod.send("maintenance at noon")
        assert await next_frame(plain) == "maintenance at noon"
    finally:
        await plain.close()
        await mod.close()
    assert await _kept(stores) == ["maintenance at noon"]
