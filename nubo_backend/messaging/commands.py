"""WebSocket commands of the messaging domain; each does what its REST twin does.

A handler gets (stores, user_id, frame) and returns the reply frame for the sending
connection, if any. NuboError raised here becomes an `error` frame on that connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nubo_backend.edge.validation import validate
from nubo_backend.messaging import service
from nubo_backend.messaging.schemas import ReadCommand, SendCommand, TypingCommand
from nubo_backend.previews.messages import preview_message_later
from nubo_backend.stores import Stores

Frame = dict[str, Any]


async def message_send(stores: Stores, user_id: int, frame: Frame) -> Frame:
    """Store the message, then ack: the ack means the message is durable."""
    command = validate(SendCommand, frame)
    message, created = await service.send_message(
        stores, user_id, command.conversation_id, command.body, command.client_id,
        media_ids=command.media_ids,  # media
    )
    if created:
        preview_message_later(stores, message["id"], command.body)  # social31: after the commit
    return {
        "type": "ack",
        "client_id": command.client_id,
        "message_id": message["id"],
        "duplicate": not created,
    }


async def typing(stores: Stores, user_id: int, frame: Frame) -> None:
    command = validate(TypingCommand, frame)
    await service.typing(stores, user_id, command.conversation_id)


async def conversation_read(stores: Stores, user_id: int, frame: Frame) -> None:
    command = validate(ReadCommand, frame)
    await service.mark_read(stores, user_id, command.conversation_id, command.message_id)


HANDLERS: dict[str, Callable[[Stores, int, Frame], Awaitable[Frame | None]]] = {
    "message.send": message_send,
    "typing": typing,
    "conversation.read": conversation_read,
}
