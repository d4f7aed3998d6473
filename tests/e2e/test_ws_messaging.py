"""Messaging over the WebSocket, end to end across instances."""

import asyncio

from nubo_backend.jsonutil import dumps_str
from nubo_backend.messaging import service as messaging
from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, next_event, next_frame, open_ws
from tests.factories import make_user


async def test_a_message_sent_on_a_reaches_the_recipients_two_devices_on_b_and_c(
    stores: Stores, start_server
) -> None:
    a, b, c = start_server(), start_server(), start_server()
    alice, bob = await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    sender = await open_ws(a, alice)
    phone, laptop = await open_ws(b, bob), await open_ws(c, bob)
    command = {"type": "message.send", "conversation_id": conversation["id"], "body": "Salut", "client_id": "k-1"}
    await sender.send(dumps_str(command))
    replies = await frames_until(sender, lambda f: isinstance(f, dict) and f.get("type") == "ack")
    ack = replies[-1]
    assert ack["client_id"] == "k-1" and ack["duplicate"] is False
    for ws in (phone, laptop):
        event = await next_event(ws)
        assert event["type"] == "message.created"
        assert (event["data"]["id"], event["data"]["body"]) == (ack["message_id"], "Salut")
    # A retry with the same client_id is acknowledged again but stored once.
    await sender.send(dumps_str(command))
    retry = (await frames_until(sender, lambda f: isinstance(f, dict) and f.get("type") == "ack"))[-1]
    assert retry["message_id"] == ack["message_id"] and retry["duplicate"] is True


async def test_a_non_member_gets_an_error_frame_and_stays_connected(stores: Stores, server) -> None:
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation, _ = await messaging.open_direct(stores, alice.id, bob.id)
    ws = await open_ws(server, mallory)
    await ws.send(
        dumps_str({"type": "message.send", "conversation_id": conversation["id"], "body": "x", "client_id": "m-1"})
    )
    error = await next_frame(ws)
    assert error["type"] == "error" and error["ref"] == "m-1" and error["code"] == "not_a_member"
    await ws.send('{"type": "ping"}')
    assert await asyncio.wait_for(next_frame(ws), 5) == {"type": "pong"}


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
