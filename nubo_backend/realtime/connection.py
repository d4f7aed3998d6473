"""One WebSocket connection: its bounded send queue, its in-order event stream, its read loop.

Sending never blocks the caller: a frame is written to the socket at once when the socket
takes it, else queued; a writer task drains the queue as the client reads. When the queue
is full the client is too slow and is dropped (close 1013), so it never slows anyone else.

Per-user events carry gapless ids (nubo_backend.outbox), and a batch may be published twice
or a frame lost by Redis on the way here. Each connection delivers ids in increasing order
without duplicates: an id already delivered is dropped, an early id waits (at most GAP_WAIT
seconds) for the missing ones, and a gap still open then is filled from the journal.

Reading is split in two so that a slow command never makes the client look abusive: the
connection's task takes frames off the socket as they arrive and charges the rate limit then
(by arrival, not by when a stalled store let us get to them); commands then run one at a
time, in order, from a bounded inbox, in a runner task that exists only while some wait (an
idle socket costs one task of ours, not two). Every refusal names the frame it refuses (`ref`).

The access token's `exp` holds on an open socket too: shortly before it, the client gets
`token_expiring` and may send `refresh` with a new access token; otherwise the socket is
closed with CLOSE_TOKEN_EXPIRED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.protocol import State

from nubo_backend.edge.errors import NuboError, to_nubo_error
from nubo_backend.jsonutil import dumps, loads
from nubo_backend.observability import metrics
from nubo_backend.observability.metrics import tally
from nubo_backend.realtime import broadcast
from nubo_backend.realtime.commands import CommandHandler
from nubo_backend.realtime.events import events_after, read_sequence
from nubo_backend.realtime.frames import error_frame, json_frame, text_frame
from nubo_backend.realtime.sanic_ws import drop_unused_queue, ping_now, receive

if TYPE_CHECKING:
    from nubo_backend.realtime.hub import Hub

log = logging.getLogger("nubo.realtime")

GAP_WAIT = 0.5  # seconds an out-of-order id waits for the ids before it
REPLAY_BATCH = 1000
SKIPPED_KEPT = 256  # skipped ids remembered, so a very late one is still delivered once
UNKNOWN = -1  # watermark when Redis could not tell the last id at connect time

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL_ERROR = 1011  # (and no reason) a heartbeat ping went unanswered
CLOSE_TRY_AGAIN = 1013
CLOSE_TOKEN_EXPIRED = 4001  # application range (RFC 6455 7.4.2): reconnect with a fresh token
CLOSE_TOO_MANY_CONNECTIONS = 4008  # the user holds NUBO_WS_MAX_CONNECTIONS_PER_USER already

EXPIRY_NOTICE = 60.0  # seconds before exp the client is told to refresh (a quarter of a short life)
REFUSAL_WINDOW = 10.0  # seconds over which rate-limit refusals add up to a close
CLOSE_DRAIN_SECONDS = 2.0  # after closing a flooding client: how long its close frame may take
INBOX_MAX = 32  # frames read ahead of the command being run; beyond that a frame is refused
RELOAD_ON_RESYNC = ["conversations", "notifications", "feed"]


class FrameBudget:
    """A token bucket: `rate` frames per second, in bursts of at most `rate`."""

    __slots__ = ("rate", "tokens", "last_refill")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.last_refill = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last_refill) * self.rate)
        self.last_refill = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def give_back(self) -> None:
        self.tokens = min(self.rate, self.tokens + 1)


class Connection:
    """A client's socket as the hub sees it: push frames, deliver events in order."""

    __slots__ = (
        "ws", "hub", "user_id", "session_id", "transport", "queue", "queue_max", "writer", "closed",
        "high_water",
        "base", "watermark", "pending", "buffer", "skipped", "gap_timer",
        "budget", "user_budget", "strikes", "strikes_since", "early", "expires_at", "expiry_timer",
        "inbox", "runner", "handlers", "pong", "last_heard",
    )

    def __init__(
        self, ws: WebsocketImplProtocol, hub: Hub, user_id: int, session_id: str, expires_at: float = 0.0
    ) -> None:
        self.ws = ws
        drop_unused_queue(ws)  # 3.2 KB a socket Sanic allocates and never uses
        self.hub = hub
        self.user_id = user_id
        self.session_id = session_id
        self.expires_at = expires_at  # the access token's exp (Unix time); 0: not enforced
        self.expiry_timer: asyncio.TimerHandle | None = None  # the notice, then the close
        self.transport: asyncio.Transport = ws.io_proto.transport
        self.high_water = self.transport.get_write_buffer_limits()[1]  # beyond it, frames queue
        self.queue: deque[bytes] | None = None  # frames waiting for the socket, oldest first
        self.queue_max = hub.settings.ws_send_queue
        self.writer: asyncio.Task[None] | None = None
        self.closed = False
        # Events: everything in (base, watermark] was delivered; ids above wait in pending.
        self.base = 0
        self.watermark = 0
        self.pending: dict[int, bytes] | None = None
        self.buffer: list[tuple[int, bytes]] | None = []  # live events held while replaying
        self.skipped: set[int] | None = None
        self.gap_timer: asyncio.TimerHandle | None = None
        self.budget = FrameBudget(hub.settings.ws_rate_limit)
        # Shared by every socket of the user on this instance (Hub.attach hands it over): opening
        # more sockets does not buy more frames.
        self.user_budget = FrameBudget(hub.settings.ws_user_rate_limit)
        self.strikes = 0  # refusals since strikes_since (a window of REFUSAL_WINDOW seconds)
        self.strikes_since = time.monotonic()
        # Transient frames that arrive before `ready` wait for it: ready is always the first frame.
        self.early: list[bytes] | None = []
        # Frames read ahead of the command being run (at most INBOX_MAX; made at the first, since
        # an empty deque is 600 bytes), and the task running them.
        self.inbox: deque[tuple[str | bytes, dict[str, Any] | None]] | None = None
        self.runner: asyncio.Task[None] | None = None
        self.handlers: dict[str, CommandHandler] = {}
        self.pong: asyncio.Future[None] | None = None  # the answer to the last heartbeat ping
        self.last_heard = asyncio.get_running_loop().time()  # the last frame from the client

    # -- sending -------------------------------------------------------------------------

    def push(self, wire: bytes) -> None:
        """Send one prebuilt frame without waiting; drop the client if its queue is full."""
        if self.closed:
            return
        tally.ws_frames_out += 1
        if self.queue is None:
            transport = self.transport
            if transport.get_write_buffer_size() <= self.high_water:
                if self.ws.ws_proto.state is State.OPEN:
                    transport.write(wire)
                return
            self.queue = deque()
        if len(self.queue) >= self.queue_max:
            metrics.ws_drops.labels("slow_consumer").inc()
            self.drop(CLOSE_TRY_AGAIN, "send queue full: client too slow, reconnect")
            return
        self.queue.append(wire)
        if self.writer is None:
            self.writer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Write queued frames as fast as the client reads them (waits on TCP back-pressure)."""
        io_proto = self.ws.io_proto
        try:
            while self.queue and not self.closed:
                wire = self.queue.popleft()
                if self.ws.ws_proto.state is not State.OPEN:
                    break
                await io_proto.send(wire)
        except Exception:  # noqa: BLE001 - the socket went away; the read loop cleans up
            pass
        finally:
            self.queue = None
            self.writer = None

    def heartbeat(self, payload: bytes) -> None:
        """A heartbeat tick (realtime/heartbeat.py): fail with 1011 if the last ping is still
        unanswered, as Sanic's keepalive does, else ping again."""
        if self.closed:
            return
        if self.pong is not None and not self.pong.done():
            metrics.ws_drops.labels("no_pong").inc()
            self.drop(CLOSE_INTERNAL_ERROR, "")
            return
        self.pong = ping_now(self.ws, payload)

    def close_if_idle(self, now: float, idle: float) -> None:
        """A heartbeat tick: no frame from the client for `idle` seconds (pongs do not count)."""
        if not self.closed and now - self.last_heard > idle and self.ws.ws_proto.state is State.OPEN:
            self.hub.spawn(self.close(CLOSE_NORMAL, f"idle for {idle:g}s"))

    def drop(self, code: int, reason: str) -> None:
        """Close now, without waiting for the client (a slow client would never answer)."""
        if self.closed:
            return
        self.closed = True
        self.queue = None
        log.info("closing websocket of user %s: %s %s", self.user_id, code, reason)
        self.ws.fail_connection(code, reason)

    def release(self) -> None:
        """The socket is gone: stop its writer (it may wait forever on a dead socket) and timers."""
        self.closed = True
        self.queue = self.pending = None
        if self.writer is not None:
            self.writer.cancel()
        self._cancel_gap_timer()
        self._cancel_expiry()

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            async with asyncio.timeout(2):
                await self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - timeout or broken socket: fall back to a hard close
            self.ws.fail_connection(code, reason)

    def send(self, body: dict[str, Any]) -> None:
        self.push(json_frame(body))

    # -- per-user events -----------------------------------------------------------------

    def deliver(self, event_id: int | None, wire: bytes) -> None:
        """A frame from the user's channel: transient ones go out at once, numbered ones in order."""
        if event_id is None:
            if self.early is not None:
                self.early.append(wire)
            else:
                self.push(wire)
        elif self.buffer is not None:
            self.buffer.append((event_id, wire))
        else:
            self._accept(event_id, wire)

    def _accept(self, event_id: int, wire: bytes) -> None:
        if event_id <= self.watermark:
            if self.skipped and event_id in self.skipped:  # late, but never delivered: once
                self.skipped.discard(event_id)
                self.push(wire)
            return
        if event_id != self.watermark + 1:
            if self.watermark == UNKNOWN:
                self.watermark = event_id - 1
                self._accept(event_id, wire)
                return
            if self.pending is None:
                self.pending = {}
            self.pending[event_id] = wire
            if self.gap_timer is None:
                self.gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT, self._gap_expired)
            return
        self.push(wire)
        self.watermark = event_id
        if self.pending:
            self._flush_pending()

    def _flush_pending(self) -> None:
        """Send the waiting ids that now follow the watermark; stop waiting once none is left."""
        pending = self.pending
        if pending is None:
            return
        while (nxt := pending.pop(self.watermark + 1, None)) is not None:
            self.push(nxt)
            self.watermark += 1
        if not pending:
            self.pending = None
            self._cancel_gap_timer()

    def _cancel_gap_timer(self) -> None:
        if self.gap_timer is not None:
            self.gap_timer.cancel()
            self.gap_timer = None

    def _gap_expired(self) -> None:
        self.gap_timer = None
        if self.pending and not self.closed:
            self.hub.spawn(self._fill_gap())

    async def _fill_gap(self) -> None:
        """Ids still missing after GAP_WAIT: take them from the journal, skip those it lacks."""
        try:
            journal = await events_after(self.hub.stores, self.user_id, self.watermark)
        except Exception as exc:  # noqa: BLE001 - the journal is a best effort here
            log.warning("gap fill for user %s failed: %s", self.user_id, exc)
            journal = None
        for event in journal or []:
            if not self.pending or event["id"] > max(self.pending):
                break
            self._accept(event["id"], text_frame(dumps(event)))
        while self.pending:
            nxt = min(self.pending)
            if nxt <= self.watermark:  # delivered meanwhile (a replay): never again, never backwards
                del self.pending[nxt]
                continue
            skipped = self.skipped if self.skipped is not None else set()
            skipped.update(range(self.watermark + 1, nxt))
            self.skipped = set(sorted(skipped)[-SKIPPED_KEPT:])
            self.watermark = nxt - 1
            self._accept(nxt, self.pending.pop(nxt))
        self.pending = None

    async def start_stream(self, last_event_id: int | None) -> None:
        """Begin delivery after the subscription is live: from now, or replaying after last_event_id."""
        current = await self._current_sequence()
        self.base = self.watermark = current
        # The first frame: from here on, every event of the user reaches this socket.
        known = current if current != UNKNOWN else None
        self.send({"type": "ready", "user_id": self.user_id, "last_event_id": known})
        early, self.early = self.early, None
        for wire in early or ():
            self.push(wire)
        if last_event_id is None:
            self._release_buffer()
        else:
            await self.resume(last_event_id, current)

    async def resume(self, last_event_id: int, current: int | None = None) -> None:
        """Send every journaled event after last_event_id, in order, then the live ones held meanwhile."""
        if self.buffer is None:
            self.buffer = []
        try:
            if current is None:
                current = await self._current_sequence()
            try:
                if current == UNKNOWN:
                    raise ConnectionError("event sequence unavailable")
                replayed = await self._replay(last_event_id, current)
            except Exception as exc:  # noqa: BLE001 - a store down: the events are delayed, not gone
                # Not a resync: nothing is lost. The client reconnects with the same
                # last_event_id (it still has it) once the stores answer again.
                log.warning("replay for user %s failed: %s", self.user_id, exc)
                metrics.ws_drops.labels("events_unavailable").inc()
                self.drop(CLOSE_TRY_AGAIN, "events unavailable for now: reconnect with last_event_id")
                return
            delivered_live = self.watermark > self.base
            if replayed is None:
                # The events after last_event_id are gone (past the journal's lifetime, or an
                # id never given out): say exactly that, and from where live events continue.
                metrics.ws_resumes.labels("resync").inc()
                self.send({"type": "resync_required", "last_event_id": current, "reload": RELOAD_ON_RESYNC})
                self.base = self.watermark = max(self.watermark, current)
            else:
                metrics.ws_resumes.labels("replayed").inc()
                self.watermark = max(self.watermark, replayed) if delivered_live else replayed
                self.base = min(self.base, last_event_id)
            self._settle_pending()
        finally:
            self._release_buffer()

    def _settle_pending(self) -> None:
        """After a replay moved the watermark: ids that waited in pending and were replayed are
        done (sent again they would be duplicates, and the gap timer would move the watermark
        back); those that now follow the watermark go out."""
        pending = self.pending
        if not pending:
            return
        for event_id in [i for i in pending if i <= self.watermark]:
            del pending[event_id]
        self._flush_pending()

    async def _current_sequence(self) -> int:
        """The user's last issued event id; UNKNOWN if Redis cannot say (the first live id decides)."""
        try:
            return await read_sequence(self.hub.stores, self.user_id)
        except Exception as exc:  # noqa: BLE001 - deliver what comes rather than refuse the socket
            log.warning("event sequence of user %s unavailable: %s", self.user_id, exc)
            return UNKNOWN

    async def _replay(self, last_event_id: int, current: int) -> int | None:
        """Push journaled events after last_event_id (skipping those this socket already got);
        the last id replayed, or None when the client must resync through REST."""
        if last_event_id > current:
            return None  # an id never given out
        cursor = last_event_id
        while cursor < current:
            batch = await events_after(self.hub.stores, self.user_id, cursor, REPLAY_BATCH)
            if batch is None:
                return None
            if not batch:
                break
            for event in batch:
                if not self.base < event["id"] <= self.watermark:
                    self.push(text_frame(dumps(event)))
                    await self._room_in_queue()
                cursor = event["id"]
        return cursor

    async def _room_in_queue(self) -> None:
        """Let a long replay follow the client's pace instead of overflowing its send queue."""
        writer = self.writer
        if writer is not None and self.queue is not None and len(self.queue) > self.queue_max // 2:
            await asyncio.wait([writer])  # the queue drained (or the socket is gone)

    def _release_buffer(self) -> None:
        held, self.buffer = self.buffer or [], None
        for event_id, wire in held:
            self._accept(event_id, wire)

    async def catch_up(self) -> None:
        """After the bus reconnected: whatever was published while it was away, from the journal."""
        if self.closed or self.buffer is not None or self.watermark == UNKNOWN:
            return  # closing, already replaying, or the first live id will decide
        await self.resume(self.watermark)

    # -- the access token's lifetime -------------------------------------------------------

    def watch_expiry(self) -> None:
        """Warn the client shortly before its token's exp, and close the socket at exp."""
        self._cancel_expiry()
        if not self.expires_at:
            return
        left = self.expires_at - time.time()
        notice = min(EXPIRY_NOTICE, max(left / 4, 0.0))
        # One timer at a time (the notice, which sets the close): a timer handle per socket less.
        self.expiry_timer = asyncio.get_running_loop().call_later(max(left - notice, 0.0), self._token_expiring)

    def _cancel_expiry(self) -> None:
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None

    def _token_expiring(self) -> None:
        self.send({"type": "token_expiring", "expires_at": int(self.expires_at)})
        left = max(self.expires_at - time.time(), 0.0)
        self.expiry_timer = asyncio.get_running_loop().call_later(left, self._token_expired)

    def _token_expired(self) -> None:
        self.expiry_timer = None
        # The timer runs on the loop's monotonic clock, the check (tokens.py) on the wall clock:
        # if the wall clock was stepped back meanwhile (an NTP correction), the token is still
        # valid by the check's clock, so wait for exp by that clock rather than close early.
        left = self.expires_at - time.time()
        if left > 0 and not self.closed:
            self.expiry_timer = asyncio.get_running_loop().call_later(left, self._token_expired)
            return
        if not self.closed:
            self.hub.spawn(self.close(CLOSE_TOKEN_EXPIRED, "access token expired: refresh it and reconnect"))

    async def refresh(self, command: dict[str, Any]) -> dict[str, Any]:
        """`{"type": "refresh", "access_token": ...}`: a new token of the same user keeps the socket."""
        token = command.get("access_token")
        if not isinstance(token, str) or not token:
            raise NuboError(422, "validation_error", "access_token is required")
        claims = await self.hub.verify_token(token)
        if claims is None or claims.user_id != self.user_id:
            raise NuboError(401, "invalid_token", "Token invalide")
        self.session_id, self.expires_at = claims.session_id, float(claims.expires_at)
        self.watch_expiry()
        return {"type": "refreshed", "expires_at": claims.expires_at}

    # -- reading -------------------------------------------------------------------------

    async def run(self, handlers: dict[str, CommandHandler]) -> None:
        """Read the client's frames until it stops; its commands run one at a time, in order,
        in a runner task that exists only while some wait (an idle socket holds one task: this)."""
        self.handlers = handlers
        try:
            await self._read()
            if self.runner is not None:  # what was read is answered
                await asyncio.gather(self.runner, return_exceptions=True)
        finally:
            if self.runner is not None:  # cancelled (the socket is gone): so is its command
                self.runner.cancel()

    async def _run_inbox(self) -> None:
        inbox = self.inbox
        assert inbox is not None
        try:
            while inbox:
                message, command = inbox.popleft()
                await self._handle(message, command, self.handlers)
        finally:
            self.runner = None

    async def _read(self) -> None:
        """Take frames as they arrive, charge the rate limit at arrival, queue the accepted ones."""
        ws = self.ws
        loop = asyncio.get_running_loop()
        while not self.closed:
            # No timeout here: the heartbeat closes idle sockets (a timeout is a task and a timer
            # per socket in Sanic's recv); and no task per call (sanic_ws.receive, 2 KiB a socket).
            message = await receive(ws)
            if message is None:
                return
            self.last_heard = loop.time()
            tally.ws_frames_in += 1
            self.hub.memory.note(len(message))
            command = _command(message)
            ref = _ref(command)
            if not self._within_rate(ref):
                if self.strikes > 2 * self.hub.settings.ws_rate_limit:
                    # A close handshake, not a drop: the client is reading (it is sending),
                    # and closing under its flood could reset the socket before the close
                    # frame reaches it. `close` still gives up after 2 s.
                    await self.close(CLOSE_POLICY, "rate limit exceeded")
                    await self._discard_until_closed(CLOSE_DRAIN_SECONDS)
                    return
                continue
            inbox = self.inbox
            if inbox is None:
                inbox = self.inbox = deque()
            if len(inbox) >= INBOX_MAX:
                # Our stores are slow, not the client: refuse this one, charge nothing.
                metrics.ws_refusals.labels("busy").inc()
                self.budget.give_back()
                self.user_budget.give_back()
                self.push(error_frame("busy", "Server busy: this frame was not processed, send it again", ref))
                continue
            inbox.append((message, command))
            if self.runner is None:
                self.runner = asyncio.create_task(self._run_inbox())

    async def _discard_until_closed(self, seconds: float) -> None:
        """After our close frame, read and drop what the client still sends until its own close
        frame ends the socket (at most `seconds`). Left unread, its frames stop Sanic from
        reaching that close frame, and the socket is then closed with bytes unread: the kernel
        answers with a reset, which can destroy our close frame in the client's buffer before
        the client reads it (it then sees 1006, not 1008)."""
        task = asyncio.current_task()
        try:
            async with asyncio.timeout(seconds):
                while self.ws.ws_proto.state is not State.CLOSED:
                    await receive(self.ws)
        except asyncio.CancelledError:
            # receive says the socket ended this way (as Sanic's recv); a real cancellation goes on.
            if task is not None and task.cancelling():
                raise
        except Exception:  # noqa: BLE001 - closed, timed out, broken: nothing left to wait for
            return

    def _within_rate(self, ref: Any = None) -> bool:
        """Charge one frame to this socket's budget (ws_rate_limit per second) and to its user's
        (ws_user_rate_limit per second across the user's sockets here). `strikes` counts the
        refusals of the last REFUSAL_WINDOW seconds, not in a row: a flood that lets one token
        refill now and then is still closed, so a socket can cost us at most 2 × rate error
        frames, whichever budget refused."""
        now = time.monotonic()
        if self.budget.take(now):
            if self.user_budget.take(now):
                return True
            self.budget.give_back()  # the frame is refused: it costs the socket nothing
            message = (f"Too many frames from this account: at most {self.user_budget.rate} per second "
                       "across its sockets")
        else:
            message = f"Too many frames: at most {self.budget.rate} per second"
        if now - self.strikes_since > REFUSAL_WINDOW:
            self.strikes, self.strikes_since = 0, now
        self.strikes += 1
        metrics.ws_refusals.labels("rate_limited").inc()
        if self.strikes <= 2 * self.hub.settings.ws_rate_limit:  # beyond that, the read loop closes the socket
            self.push(error_frame("rate_limited", message, ref))
        return False

    async def _handle(
        self, message: str | bytes, command: dict[str, Any] | None, handlers: dict[str, CommandHandler]
    ) -> None:
        if isinstance(message, bytes):
            self.push(error_frame("unsupported_frame", "Binary frames are not supported"))
            return
        if command is None:
            if message.lstrip().startswith("{") and not _is_json(message):
                self.push(error_frame("malformed_json", "Frame is not valid JSON"))
                return
            await self._broadcast(message)  # plain text, or JSON without a type, as in the seed
            return
        kind = command["type"]
        ref = _ref(command)
        try:
            if kind == "resume":
                await self.resume(_event_id(command.get("last_event_id")))
                return
            if kind == "refresh":
                reply = await self.refresh(command)
            else:
                handler = handlers.get(kind)
                if handler is None:
                    raise NuboError(400, "unknown_type", f"Unknown frame type: {kind}")
                reply = await handler(self.hub.stores, self.user_id, command)
        except Exception as exc:  # noqa: BLE001 - one failed command must not end the connection
            # The REST handler's mapping, so a frame fails the way its REST twin would.
            error = to_nubo_error(exc)
            if error.status >= 500 and error.status != 503:
                log.error("command %s failed for user %s", kind, self.user_id, exc_info=exc)
            self.push(error_frame(error.code, error.message, ref))
            return
        if reply is not None:
            self.send(reply)

    async def _broadcast(self, text: str) -> None:
        try:
            await broadcast.publish(self.hub.stores, self.user_id, text)
        except NuboError as refusal:  # too long, not allowed, over a rate (broadcast.may_broadcast)
            self.push(error_frame(refusal.code, refusal.message))
        except Exception as exc:  # noqa: BLE001 - Redis or MongoDB down: tell the sender
            log.warning("broadcast from user %s failed: %s", self.user_id, exc)
            self.push(error_frame("unavailable", "Broadcast unavailable, try again"))


def _event_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NuboError(422, "validation_error", "last_event_id must be a non-negative integer")
    return value



def _command(message: str | bytes) -> dict[str, Any] | None:
    """The frame as a command (a JSON object with a string `type`), else None."""
    if isinstance(message, bytes) or not message.lstrip().startswith("{"):
        return None
    try:
        command = loads(message)
    except ValueError:
        return None
    if isinstance(command, dict) and isinstance(command.get("type"), str):
        return command
    return None


def _is_json(text: str) -> bool:
    try:
        loads(text)
    except ValueError:
        return False
    return True


def _ref(command: dict[str, Any] | None) -> Any:
    """What a reply or refusal names its frame by: its client_id, else its type."""
    if command is None:
        return None
    return command.get("client_id") or command["type"]
