"""Reactions on messages reach members' sockets on other instances."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, open_ws
from tests.factories import make_user


async def test_a_reaction_made_on_one_instance_reaches_a_members_socket_on_another(
    stores: Stores, start_server
) -> None:
    a, b = start_server(), start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    message, _ = await messaging.send_message(stores, alice.id, conversation["id"], "hi", "c-1")
    ws = await open_ws(b, alice)
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as api:
        response = await api.put(f"/messages/{message['id']}/reactions/{quote(chr(0x1F389))}", headers=bob.headers)
    assert response.status_code == 200, response.text
    frames = await frames_until(ws, lambda f: isinstance(f, dict) and f.get("type") == "message.reaction", 10)
    assert frames[-1]["data"]["emoji"] == chr(0x1F389)
    assert frames[-1]["data"]["user_id"] == bob.id
