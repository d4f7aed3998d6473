"""Photos in messages sent over the WebSocket: the event carries them."""

import httpx

from nubo_backend.jsonutil import dumps_str
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, next_event, open_ws
from tests.factories import make_user
from tests.media_support import jpeg


async def test_message_send_over_the_socket_attaches_media_and_the_event_carries_them(
    stores: Stores, server
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        uploaded = await api.post("/media", content=jpeg(), headers={**alice.headers, "Content-Type": "image/jpeg"})
        media = uploaded.json()
    sender, receiver = await open_ws(server, alice), await open_ws(server, bob)
    await sender.send(dumps_str({"type": "message.send", "conversation_id": conversation["id"], "body": "look",
                                 "client_id": "p-1", "media_ids": [media["id"]]}))
    ack = (await frames_until(sender, lambda f: isinstance(f, dict) and f.get("type") == "ack"))[-1]
    assert ack["duplicate"] is False
    event = await next_event(receiver)
    assert event["type"] == "message.created" and event["data"]["media"] == [media]
