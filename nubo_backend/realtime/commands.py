"""The command registry: what a JSON frame `{"type": ...}` from a client does.

A handler takes (stores, user_id, frame) and may return a reply frame for that connection;
it raises NuboError to answer with an error frame. `resume` is handled by the connection
itself (it needs the connection's state); every other type is looked up here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nubo_backend.stores import Stores

CommandHandler = Callable[[Stores, int, dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def ping(stores: Stores, user_id: int, frame: dict[str, Any]) -> dict[str, Any]:
    """Application-level keepalive; also resets the idle timeout."""
    return {"type": "pong"}


BUILT_INS: dict[str, CommandHandler] = {"ping": ping}


def command_handlers() -> dict[str, CommandHandler]:
    """Every command type the server understands, built once per app."""
    from nubo_backend.messaging.commands import HANDLERS as messaging

    return {**BUILT_INS, **messaging}
