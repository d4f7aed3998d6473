"""What we add to Sanic's WebSocket implementation, in one place, pinned by tests/test_sanic_ws.py.

1. A ping sent at once (`ping_now`), for the instance-wide heartbeat (realtime/heartbeat.py).
   Sanic's `ping()` is a coroutine behind the connection's mutex; this writes the frame now
   and registers it where Sanic's pong handling (`process_pong`) resolves it.

2. A receive without Sanic's task per call (`receive`). Sanic's `recv()` runs the assembler's
   `get()` in a new task and waits on it and on `recv_cancel` (a future Sanic cancels when the
   client's close frame or EOF arrives) with `asyncio.wait`: a task, its coroutine, a set and a
   future for every socket waiting to read, i.e. all of them. Here `get()` runs in the caller's
   task, and `recv_cancel` interrupts that wait by cancelling the caller's task, only while it
   is suspended inside `get()`; the cancellation is then taken back (`uncancel`) and the caller
   gets the CancelledError recv raises in that case, with `task.cancelling()` still telling a
   real cancellation apart.

3. Invalid UTF-8 fails the connection with 1007 (RFC 6455, 8.1). Sanic (25.12) decodes text
   frames in its frame assembler (`WebsocketFrameAssembler.put`), inside the task that processes
   each TCP read, and does not catch a decoding error: an invalid UTF-8 frame kills that task
   ("Task exception was never retrieved"), the rest of the read is dropped, and the socket stays
   open and may wedge.

4. The assembler's `completed_queue`, an `asyncio.Queue` Sanic makes for every socket and never
   uses (3.2 KB: a queue holds three deques and an Event with a fourth), is let go
   (`drop_unused_queue`).

5. The code a socket was closed with (`close_code`), for the metrics: ours when we closed it,
   the client's when it did, 1006 when no close frame went either way.
"""

from __future__ import annotations

import asyncio

from sanic.exceptions import ServerError, WebsocketClosed
from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame
from websockets.protocol import State

CLOSE_INVALID_DATA = 1007


class _Utf8CheckedAssembler(WebsocketFrameAssembler):
    """Sanic's assembler, failing the connection with 1007 where it would raise."""

    __slots__ = ()  # same layout as the parent's, so an instance can take this class

    async def put(self, frame: Frame) -> None:
        try:
            await super().put(frame)
        except UnicodeDecodeError:
            self.decoder = None
            self.protocol.fail_connection(CLOSE_INVALID_DATA, "invalid UTF-8 in a text frame")


CLOSE_ABNORMAL = 1006


def close_code(ws: WebsocketImplProtocol) -> int:
    """The close code of a socket that ended (websockets' `close_sent` / `close_rcvd`)."""
    proto = ws.ws_proto
    frame = proto.close_sent or proto.close_rcvd
    return frame.code if frame is not None else CLOSE_ABNORMAL


def close_on_invalid_utf8(ws: WebsocketImplProtocol) -> None:
    """Make ws fail with 1007 on a text frame (or fragment) that is not UTF-8."""
    ws.assembler.__class__ = _Utf8CheckedAssembler


def drop_unused_queue(ws: WebsocketImplProtocol) -> None:
    """Let go of the assembler's completed_queue, which nothing in Sanic reads or writes."""
    ws.assembler.completed_queue = None  # type: ignore[assignment]


def ping_now(ws: WebsocketImplProtocol, payload: bytes) -> asyncio.Future[None] | None:
    """Write a ping frame now; the future is resolved when its pong arrives (None: not open).
    payload must differ from those of the socket's pings still unanswered."""
    io_proto = ws.io_proto
    if ws.ws_proto.state is not State.OPEN or io_proto is None or io_proto.transport is None:
        return None
    future: asyncio.Future[None] = io_proto.loop.create_future()
    ws.pings[payload] = future
    ws.ws_proto.send_ping(payload)
    io_proto.transport.write(b"".join(ws.ws_proto.data_to_send()))
    return future


class _Interrupt:
    """recv_cancel's done callback: cancels the receiving task, but only while it waits in get()
    (armed), so that no other await of that task (a send, a close, a timeout) is ever hit."""

    __slots__ = ("task", "armed", "fired")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.armed = True
        self.fired = False

    def __call__(self, _: asyncio.Future[None]) -> None:
        if self.armed:
            self.armed = False
            self.fired = True
            self.task.cancel()


async def receive(ws: WebsocketImplProtocol) -> str | bytes | None:
    """The next message, as `ws.recv()` (no timeout) returns it, but in the caller's task.

    As recv: WebsocketClosed once the socket is closed, ServerError if another task is
    receiving, and CancelledError when the client's close frame or EOF ends the wait (with the
    task's cancellation count as it was: `task.cancelling()` is nonzero only for a real one)."""
    if ws.recv_lock.locked():
        raise ServerError("cannot call recv while another task is already waiting for the next message")
    if ws.ws_proto.state is State.CLOSED:
        raise WebsocketClosed("Cannot receive from websocket interface after it is closed.")
    task = asyncio.current_task()
    assert task is not None
    interrupt = _Interrupt(task)
    cancel: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cancel.add_done_callback(interrupt)
    async with ws.recv_lock:  # free (checked above): taken without a suspension
        ws.recv_cancel = cancel
        try:
            return await ws.assembler.get(None)
        except asyncio.CancelledError:
            if interrupt.fired:
                task.uncancel()  # ours, not the caller's: what is left is a real cancellation
            raise
        finally:
            interrupt.armed = False
            ws.recv_cancel = None
