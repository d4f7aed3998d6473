"""Messaging over the WebSocket, end to end across instances."""

import asyncio

import pytest

from nubo_backend.client import Broadcast, Forbidden, MessageCreated
from nubo_backend.jsonutil import dumps_str
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.client.support import connected, next_of
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user


async def test_a_message_sent_on_a_reaches_the_recipients_two_devices_on_b_and_c(
    stores: Stores, start_server, login
) -> None:
    a, b, c = start_server(), start_server(), start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    sender, phone, laptop = await login(a, alice), await login(b, bob), await login(c, bob)
    await connected(phone, laptop)
    async with asyncio.timeout(10):
        ack = await sender.send_message_live(conversation["id"], "Salut", client_id="k-1")
    assert ack.client_id == "k-1" and not ack.duplicate
    for device in (phone, laptop):
        message = (await next_of(device, MessageCreated)).message
        assert (message.id, message.body) == (ack.message_id, "Salut")
    # A retry with the same client_id is acknowledged again but stored once.
    async with asyncio.timeout(10):
        retry = await sender.send_message_live(conversation["id"], "Salut", client_id="k-1")
    assert retry.message_id == ack.message_id and retry.duplicate


async def test_a_non_member_gets_an_error_frame_and_stays_connected(stores: Stores, server, login) -> None:
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    client = await login(server, mallory)
    with pytest.raises(Forbidden) as refused:
        async with asyncio.timeout(10):
            await client.send_message_live(conversation["id"], "x", client_id="m-1")
    assert (refused.value.code, refused.value.ref) == ("not_a_member", "m-1")
    await client.broadcast("still here")
    assert (await next_of(client, Broadcast)).text == "still here"
    assert client.realtime.connections == 1  # the same socket throughout


async def test_frames_the_database_could_not_take_get_validation_errors_and_the_socket_stays(
    stores: Stores, server
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    ws = await open_ws(server, alice)
    bad_frames = [
        {"type": "message.send", "conversation_id": 2**63, "body": "x", "client_id": "big-1"},
        {"type": "message.send", "conversation_id": conversation["id"], "body": "a\u0000b", "client_id": "nul-1"},
        {"type": "conversation.read", "conversation_id": conversation["id"], "message_id": 2**63},
    ]
    for frame in bad_frames:
        await ws.send(dumps_str(frame))
        error = await next_frame(ws)
        assert error["type"] == "error" and error["code"] == "validation_error", (frame, error)
    await ws.send('{"type": "ping"}')
    assert await next_frame(ws) == {"type": "pong"}
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 0
