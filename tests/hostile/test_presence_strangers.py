"""Issue #26, item 6: presence goes to accepted contacts only, the members of conversations the
user has written in. Opening a conversation with someone, or putting them in a group, does not
make their online/offline yours to watch."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, next_frame, open_ws
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess


async def _presence_seen(ws: ClientConnection, within: float) -> list[dict[str, Any]]:
    """Every presence frame reaching ws within `within` seconds (other frames skipped)."""
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within):
            for _ in range(100):  # bounded: a handful of events at most
                frame = await next_frame(ws, within)
                if isinstance(frame, dict) and frame.get("type") == "presence":
                    seen.append(frame["data"])
    except TimeoutError:
        pass
    return seen


async def _presence_until(ws: ClientConnection, expected: dict[str, Any]) -> None:
    await frames_until(ws, lambda f: isinstance(f, dict) and f.get("type") == "presence"
                       and f["data"] == expected, within=10)


async def test_opening_a_conversation_with_someone_does_not_show_their_presence(
        api: httpx.AsyncClient, server: ServerProcess, stores: Stores, server_log: ServerLog) -> None:
    alice, friend, stranger = await make_user(stores), await make_user(stores), await make_user(stores)
    to_friend = (await api.post("/conversations", json={"user_id": friend.id}, headers=alice.headers)).json()
    wrote = await api.post(f"/conversations/{to_friend['id']}/messages", json={"body": "hi"}, headers=alice.headers)
    direct = await api.post("/conversations", json={"user_id": alice.id}, headers=stranger.headers)
    group = await api.post("/conversations", json={"title": "hi alice", "member_ids": [alice.id]},
                           headers=stranger.headers)
    assert [r.status_code for r in (wrote, direct, group)] == [201] * 3
    said_hi = await api.post(f"/conversations/{direct.json()['id']}/messages", json={"body": "hi"},
                             headers=stranger.headers)
    assert said_hi.status_code == 201, said_hi.text  # the stranger writing consents for the stranger only
    ear, friends_ear = await open_ws(server, stranger), await open_ws(server, friend)
    try:
        alice_ws = await open_ws(server, alice)
        # Each announcement goes to all of Alice's contacts at once: once her friend has it,
        # the stranger would have it too.
        await _presence_until(friends_ear, {"user_id": alice.id, "status": "online"})
        assert await _presence_seen(ear, 0.5) == []
        await alice_ws.close()
        await _presence_until(friends_ear, {"user_id": alice.id, "status": "offline"})
        assert await _presence_seen(ear, 0.5) == []
    finally:
        await ear.close()
        await friends_ear.close()
