"""The real-time stream: one WebSocket kept open across failures.

`events()` yields every frame the user should see, in order, each per-user event once: on a
close it reconnects (with backoff, to the next instance if one is down) and resumes from the
last event it received; events it already has are dropped. It answers `token_expiring` by
refreshing over REST and then in-band (`refresh`), and reconnects with a new token after a
4001. It raises `ResyncRequired` when the server says the events to resume from are gone,
`SessionRevoked` when the session ends, `Disconnected` after `give_up_after` seconds of
failed attempts. `stats` counts what it received and dropped (stats.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from nubo_backend.client.errors import (
    Disconnected,
    NuboError,
    ResyncRequired,
    SessionRevoked,
    Unauthorized,
    error_for_frame,
)
from nubo_backend.client.frames import (
    Ack,
    Command,
    ErrorFrame,
    Event,
    Frame,
    Ping,
    Ready,
    Refresh,
    Refreshed,
    ResyncFrame,
    SendMessage,
    TokenExpiring,
    parse_frame,
)
from nubo_backend.client.stats import EventStats

if TYPE_CHECKING:
    from nubo_backend.client.api import Nubo

_RECONNECT_AT_ONCE = {1001, 4001}  # going away (another instance is up), token expired (new one ready)


class Realtime:
    def __init__(self, client: Nubo, *, backoff: float = 0.2, max_backoff: float = 5.0,
                 give_up_after: float | None = 300.0, keepalive: float = 25.0) -> None:
        self.client = client
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.give_up_after = give_up_after
        self.keepalive = keepalive
        self.last_event_id: int | None = None  # of the last event events() yielded
        self.user_id: int | None = None
        self.connections = 0  # sockets that reached `ready` (1 + reconnections)
        self.stats = EventStats()
        # Called by the socket's reader with each frame events() will yield, as it arrives:
        # events() yields it at least one event-loop turn later (a queue lies between them),
        # which under load is milliseconds. For timestamps and metrics; it must not block.
        self.on_frame: Callable[[Frame], None] | None = None
        self._resuming = False  # whether the socket being opened asked for last_event_id
        self.connected = asyncio.Event()
        self._received: int | None = None  # newest id received (queued or yielded)
        self._queue: asyncio.Queue[Frame | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._pending: dict[str, tuple[SendMessage, asyncio.Future[Ack]]] = {}

    # --- what the application calls --------------------------------------------------

    async def events(self, *, since: int | None = None) -> AsyncIterator[Frame]:
        """Per-user events (`id` set) and transient ones, broadcast lines, acks and error
        frames, in the order they came. `since`: resume after that event id (default: where
        the last iteration stopped, or from now on the first)."""
        if since is not None and self._task is None:
            self.last_event_id = since
        self.start()
        while True:
            item = await self._queue.get()
            if isinstance(item, ResyncRequired):
                self.last_event_id = item.last_event_id
                raise item
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Event) and item.id is not None:
                self.last_event_id = item.id
            yield item

    def start(self) -> None:
        """Open the socket in the background (events() does it itself)."""
        if self._task is None or self._task.done():
            self._received = self.last_event_id
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="nubo-client-realtime")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()

    async def wait_connected(self) -> None:
        """Until a socket is open (`ready` received); bound it with asyncio.timeout."""
        self.start()
        await self.connected.wait()

    async def send(self, command: Command) -> None:
        await self.send_text(command.frame())

    async def send_text(self, text: str) -> None:
        await self.wait_connected()
        assert self._ws is not None
        await self._ws.send(text)

    async def send_message(self, conversation_id: int, body: str, *, client_id: str | None = None,
                           media_ids: list[int] | None = None) -> Ack:
        command = SendMessage(conversation_id, body, client_id or uuid.uuid4().hex, media_ids)
        done: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[command.client_id] = (command, done)
        try:
            self.start()
            if self.connected.is_set() and self._ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._ws.send(command.frame())  # else sent on the next `ready`
            return await done
        finally:
            self._pending.pop(command.client_id, None)

    # --- the connection loop ---------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures, failing_since = 0, None
        try:
            while True:
                outcome = await self._connect_once()
                if outcome == "ready-then-closed":
                    failures, failing_since = 0, None
                    code = self._last_close
                    if code in _RECONNECT_AT_ONCE:
                        if code == 1001:
                            self.client.next_url()
                        continue
                else:
                    failures += 1
                    failing_since = failing_since or loop.time()
                    self.client.next_url()
                    if self.give_up_after is not None and loop.time() - failing_since > self.give_up_after:
                        raise Disconnected(f"no instance answered for {self.give_up_after:.0f}s: {outcome}")
                delay = min(self.max_backoff, self.backoff * 2 ** min(failures, 10))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        except (NuboError, Disconnected) as exc:
            self._queue.put_nowait(exc)
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            self.connected.clear()

    async def _connect_once(self) -> str:
        """One socket from handshake to close: 'ready-then-closed', or why it did not open."""
        self._last_close: int | None = None
        token = await self._token_for_socket()
        url = self.client.url.replace("http", "ws", 1) + "/ws"
        self._resuming = self._received is not None
        if self._resuming:
            url += f"?last_event_id={self._received}"
        try:
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=5,
                               max_size=2**22)
        except InvalidStatus as exc:
            self.stats.failed_attempts += 1
            if exc.response.status_code == 401:
                await self._refresh_or_give_up()
            return f"handshake refused ({exc.response.status_code})"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.stats.failed_attempts += 1
            return f"cannot connect ({type(exc).__name__})"
        keepalive = asyncio.create_task(self._keep_alive(ws))
        try:
            await self._read(ws, token)
        except ConnectionClosed:
            pass
        finally:
            keepalive.cancel()
            self.connected.clear()
            self._ws = None
            await ws.close()
        self._last_close = ws.close_code
        if self._was_ready:
            self.stats.closes[ws.close_code if ws.close_code is not None else 1006] += 1
        else:
            self.stats.failed_attempts += 1
        if ws.close_code == 1008 and "revoked" in (ws.close_reason or ""):
            raise SessionRevoked("session_revoked", ws.close_reason, 401)
        if ws.close_code == 4001:
            await self._refresh_or_give_up()
        return "ready-then-closed" if self._was_ready else f"closed before ready ({ws.close_code})"

    async def _read(self, ws: ClientConnection, token: str) -> None:
        self._was_ready = False
        socket_token = token
        async for raw in ws:
            if not isinstance(raw, str):
                continue
            self.stats.frames += 1
            frame = parse_frame(raw)
            if isinstance(frame, Ready):
                self._was_ready = True
                self.user_id = frame.user_id
                if self._received is None:
                    self._received = frame.last_event_id or 0  # from now on
                self._ws = ws
                self.connections += 1
                self.stats.reconnects += self.connections > 1
                self.stats.resumes += self._resuming
                self.connected.set()
                for command, future in list(self._pending.values()):
                    if not future.done():  # unacknowledged: again, with the same client_id
                        await ws.send(command.frame())
                continue
            if isinstance(frame, Event) and frame.id is not None:
                if not self.stats.event(frame.id, self._received):
                    continue  # already have it (or it came after a later one)
                self._received = frame.id
            elif isinstance(frame, ResyncFrame):
                self.stats.resyncs += 1
                self._received = frame.last_event_id
                self._queue.put_nowait(ResyncRequired(frame.last_event_id, frame.reload))
                continue
            elif isinstance(frame, TokenExpiring):
                socket_token = await self._refresh_socket(ws, socket_token)
                continue
            elif isinstance(frame, Refreshed):
                continue
            elif isinstance(frame, Ack):
                pending = self._pending.get(frame.client_id)
                if pending is not None and not pending[1].done():
                    pending[1].set_result(frame)
            elif isinstance(frame, ErrorFrame):
                pending = self._pending.get(frame.ref or "")
                if pending is not None and not pending[1].done():
                    pending[1].set_exception(error_for_frame(raw_error(frame)))
            if self.on_frame is not None:
                self.on_frame(frame)
            self._queue.put_nowait(frame)

    async def _refresh_socket(self, ws: ClientConnection, socket_token: str) -> str:
        """token_expiring: a new token over REST (unless the client already has one), then in-band."""
        try:
            if self.client.tokens.access_token == socket_token:
                await self.client.refresh(unless_newer_than=socket_token)
            token = self.client.tokens.access_token
            await ws.send(Refresh(token).frame())
            return token
        except Exception:  # noqa: BLE001 - REST down: closed with 4001 at exp, then we reconnect with a new token
            return socket_token

    async def _token_for_socket(self) -> str:
        try:
            return await self.client._fresh_token()
        except Unauthorized:
            raise
        except Exception:  # noqa: BLE001 - REST unreachable: try the socket with what we have
            return self.client.tokens.access_token

    async def _refresh_or_give_up(self) -> None:
        try:
            await self.client.refresh()
        except Unauthorized as exc:
            raise SessionRevoked(exc.code, exc.error, 401) from exc
        except Exception:  # noqa: BLE001 - instance unreachable: the next attempt tries again
            pass

    async def _keep_alive(self, ws: ClientConnection) -> None:
        # The server closes a socket whose client sent nothing for its idle timeout (60 s).
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.keepalive)
                await ws.send(Ping().frame())


def raw_error(frame: ErrorFrame) -> dict[str, Any]:
    return {"code": frame.code, "error": frame.error, "ref": frame.ref}
