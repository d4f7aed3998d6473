"""The command registry: built-ins answer, and a domain adds its handlers in one place."""

from nubo_backend.realtime.commands import BUILT_INS, command_handlers
from nubo_backend.stores import Stores


async def test_ping_answers_pong(stores: Stores) -> None:
    handlers = command_handlers()
    assert await handlers["ping"](stores, 1, {"type": "ping"}) == {"type": "pong"}


def test_each_call_builds_a_fresh_registry_from_the_built_ins() -> None:
    first = command_handlers()
    first["teleport"] = first["ping"]
    assert "teleport" not in command_handlers() and "teleport" not in BUILT_INS
