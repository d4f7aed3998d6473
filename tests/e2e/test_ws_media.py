"""Photos in messages sent over the WebSocket: the event carries them."""

import asyncio

from nubo_backend.client import MessageCreated
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.client.support import connected, next_of
from tests.factories import make_user
from tests.media_support import jpeg


async def test_message_send_over_the_socket_attaches_media_and_the_event_carries_them(
    stores: Stores, server, login
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    sender, receiver = await login(server, alice), await login(server, bob)
    media = await sender.upload_media(jpeg(), "image/jpeg")
    await connected(receiver)
    async with asyncio.timeout(10):
        ack = await sender.send_message_live(conversation["id"], "look", media_ids=[media.id])
    assert not ack.duplicate
    message = (await next_of(receiver, MessageCreated)).message
    assert message.id == ack.message_id and [m.id for m in message.media] == [media.id]
    assert message.media[0].url == f"/media/{media.id}" and message.media[0].width == media.width
