"""The command registry: built-ins answer, and a domain adds its handlers in one place."""

from types import SimpleNamespace

from asyncpg.exceptions import NumericValueOutOfRangeError

from nubo_backend.realtime.commands import BUILT_INS, command_handlers
from nubo_backend.realtime.connection import Connection, _command
from nubo_backend.realtime.frames import error_frame
from nubo_backend.stores import Stores


async def test_ping_answers_pong(stores: Stores) -> None:
    handlers = command_handlers()
    assert await handlers["ping"](stores, 1, {"type": "ping"}) == {"type": "pong"}


def test_each_call_builds_a_fresh_registry_from_the_built_ins() -> None:
    first = command_handlers()
    first["teleport"] = first["ping"]
    assert "teleport" not in command_handlers() and "teleport" not in BUILT_INS


class _RecordingConnection(Connection):
    """A connection without a socket: what it would send is kept in `sent`."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.hub = SimpleNamespace(stores=None)
        self.user_id = 1

    def push(self, wire: bytes) -> None:
        self.sent.append(wire)


async def test_a_command_the_database_refuses_fails_like_its_rest_twin_not_as_a_crash() -> None:
    async def refused(stores: Stores, user_id: int, frame: dict) -> None:
        raise NumericValueOutOfRangeError("value out of range for type bigint")

    conn = _RecordingConnection()
    text = '{"type": "x.store", "client_id": "c-1"}'
    await conn._handle(text, _command(text), {"x.store": refused})
    assert conn.sent == [error_frame("invalid_value", "A value in the request is out of range", "c-1")]
