"""Pins the Sanic internals realtime/sanic_ws.py relies on: a Sanic upgrade that changes them
fails here, by name, instead of letting invalid UTF-8 wedge sockets again; and what `receive`
promises, on a bare Sanic app over a real socket."""

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest
from sanic import Request, Sanic
from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.asyncio.client import connect

from nubo_backend.realtime.sanic_ws import _Utf8CheckedAssembler, receive


def test_the_assembler_decodes_text_in_put_and_keeps_its_protocol_and_decoder() -> None:
    source = inspect.getsource(WebsocketFrameAssembler.put)
    assert "self.decoder.decode(" in source
    assert {"decoder", "protocol"} <= set(WebsocketFrameAssembler.__slots__)


def test_the_checked_assembler_can_take_the_place_of_sanics() -> None:
    assert _Utf8CheckedAssembler.__slots__ == ()
    assert _Utf8CheckedAssembler.__mro__[1] is WebsocketFrameAssembler


def test_sanics_pong_handling_resolves_the_pings_that_ping_now_registers() -> None:
    """ping_now puts its future in `pings` (payload -> future) and writes through io_proto's
    transport; Sanic's process_pong must still resolve futures from that dict."""
    assert "self.pings = {}" in inspect.getsource(WebsocketImplProtocol.__init__)
    pong = inspect.getsource(WebsocketImplProtocol.process_pong)
    assert "self.pings.items()" in pong and "set_result(None)" in pong
    assert "self.pings[data] = self.io_proto.loop.create_future()" in inspect.getsource(WebsocketImplProtocol.ping)



def test_the_assembler_never_uses_its_completed_queue() -> None:
    """drop_unused_queue lets it go: nothing but the constructor may name it."""
    users = [name for name, member in vars(WebsocketFrameAssembler).items()
             if callable(member) and name != "__init__" and "completed_queue" in inspect.getsource(member)]
    assert users == []
    assert "completed_queue" not in inspect.getsource(WebsocketImplProtocol)


def test_sanic_only_cancels_recv_cancel_on_a_close_frame_or_eof_and_recv_reads_in_a_task() -> None:
    """receive hands Sanic a recv_cancel future whose cancellation interrupts the caller's task:
    Sanic must do nothing with it but cancel it, and recv must still be the task per call
    receive avoids."""
    for method in (WebsocketImplProtocol.process_events, WebsocketImplProtocol.async_eof_received):
        uses = [line.strip() for line in inspect.getsource(method).splitlines() if "recv_cancel" in line]
        assert uses == ["if self.recv_cancel:", "self.recv_cancel.cancel()"]
    recv = inspect.getsource(WebsocketImplProtocol.recv)
    assert "asyncio.create_task(self.assembler.get(timeout))" in recv
    assert "self.recv_cancel = asyncio.Future()" in recv


# -- receive, on a real Sanic server and a real socket ----------------------------------------

Seen = asyncio.Queue[tuple[str, object]]


@pytest.fixture(scope="module")
async def bare_server() -> AsyncIterator[tuple[int, dict[str, Seen]]]:
    """A bare Sanic app whose /ws handler reports each step (message, wait, error) to the
    test's queue."""
    app = Sanic("test_sanic_ws_receive", configure_logging=False)
    app.config.WEBSOCKET_PING_INTERVAL = None
    current: dict[str, Seen] = {}

    @app.websocket("/ws")
    async def echo(request: Request, ws: WebsocketImplProtocol) -> None:
        task = asyncio.current_task()
        assert task is not None
        seen = current["seen"]
        try:
            while True:
                message = await receive(ws)
                await seen.put(("message", message))
                if message == "time out":  # a real cancellation of the task, inside receive
                    try:
                        async with asyncio.timeout(0.2):
                            await receive(ws)
                    except TimeoutError:
                        await seen.put(("timed out", task.cancelling()))
                        return
        except asyncio.CancelledError:
            await seen.put(("cancelled", task.cancelling()))
            raise
        except WebsocketClosed:
            await seen.put(("closed", task.cancelling()))

    server = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    await server.start_serving()
    yield server.server.sockets[0].getsockname()[1], current
    await server.close()


@pytest.fixture
def receiving_server(bare_server: tuple[int, dict[str, Seen]]) -> tuple[int, Seen]:
    port, current = bare_server
    current["seen"] = asyncio.Queue()
    return port, current["seen"]


async def test_receive_returns_messages_in_order_without_a_task_per_read(receiving_server) -> None:
    port, seen = receiving_server
    async with connect(f"ws://127.0.0.1:{port}/ws") as client:
        await client.send("one")
        await client.send(b"two")
        assert await asyncio.wait_for(seen.get(), 5) == ("message", "one")
        assert await asyncio.wait_for(seen.get(), 5) == ("message", b"two")
        await asyncio.sleep(0.05)  # the handler waits in receive again
        readers = [t for t in asyncio.all_tasks() if "Assembler.get" in t.get_coro().__qualname__]
        assert readers == []  # (Sanic's recv would be waiting on one here)
    assert await asyncio.wait_for(seen.get(), 5) == ("cancelled", 0)


async def test_a_close_frame_ends_receive_as_recv_does_and_leaves_no_cancellation_pending(
    receiving_server,
) -> None:
    port, seen = receiving_server
    async with connect(f"ws://127.0.0.1:{port}/ws") as client:
        await client.send("one")
        assert (await asyncio.wait_for(seen.get(), 5))[0] == "message"
    # CancelledError, as Sanic's recv raises it, but the task is not being cancelled:
    # cancelling() tells this end of the socket from a real cancellation.
    assert await asyncio.wait_for(seen.get(), 5) == ("cancelled", 0)


async def test_a_real_cancellation_inside_receive_stays_a_cancellation(receiving_server) -> None:
    port, seen = receiving_server
    async with connect(f"ws://127.0.0.1:{port}/ws") as client:
        await client.send("time out")
        assert (await asyncio.wait_for(seen.get(), 5))[0] == "message"
        assert await asyncio.wait_for(seen.get(), 5) == ("timed out", 0)
