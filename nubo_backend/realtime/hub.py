"""The connections this instance holds, per user, and delivery of bus messages to them.

Each message is parsed and framed once, then the same bytes are pushed to every target
connection: the per-connection cost of a broadcast is one non-blocking socket write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from nubo_backend.jsonutil import loads
from nubo_backend.realtime import presence
from nubo_backend.realtime.bus import Bus
from nubo_backend.realtime.connection import CLOSE_GOING_AWAY, CLOSE_POLICY, Connection
from nubo_backend.realtime.events import user_channel
from nubo_backend.realtime.frames import text_frame
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.realtime")

SHUTDOWN_REASON = "server shutting down, reconnect"


class Hub:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.bus = Bus(stores)
        self.connections: set[Connection] = set()
        self.by_user: dict[int, list[Connection]] = {}
        self.subscribing: dict[int, asyncio.Future[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.refresher: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self) -> None:
        self.bus.listen(self.stores.keys.broadcast_channel, self.on_broadcast)
        self.bus.listen(self.stores.keys.revocation_channel, self.on_revoked)
        # The auth guard's memo of live sessions is safe only while revocations are heard.
        memo = self.stores.live_sessions
        self.bus.on_connect.append(memo.clear)
        memo.active = self.bus.connected.is_set
        self.bus.start()
        self.refresher = asyncio.create_task(self._refresh_presence(), name="nubo-presence")

    async def shutdown(self) -> None:
        """Tell every client to reconnect elsewhere (1001), then leave Redis."""
        self.stopping = True
        if self.refresher is not None:
            self.refresher.cancel()
        await asyncio.gather(
            *(c.close(CLOSE_GOING_AWAY, SHUTDOWN_REASON) for c in list(self.connections)),
            return_exceptions=True,
        )
        await self.bus.stop()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job tied to the hub (kept referenced until done)."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- registration --------------------------------------------------------------------

    async def attach(self, conn: Connection) -> None:
        """Hold conn; the user's channel is live before this returns (events are then buffered)."""
        uid = conn.user_id
        self.connections.add(conn)
        held = self.by_user.get(uid)
        if held is None:
            held = self.by_user[uid] = [conn]
            live = self.subscribing[uid] = asyncio.get_running_loop().create_future()
            try:
                await self.bus.subscribe(user_channel(self.stores, uid), lambda raw: self.on_user_event(uid, raw))
            finally:
                live.set_result(None)
                self.subscribing.pop(uid, None)
        else:
            held.append(conn)
            if (live := self.subscribing.get(uid)) is not None:
                await asyncio.shield(live)
        await presence.connected(self.stores, uid)

    async def detach(self, conn: Connection) -> None:
        conn.release()
        self.connections.discard(conn)
        held = self.by_user.get(conn.user_id)
        if held is not None and conn in held:
            held.remove(conn)
            if not held:
                del self.by_user[conn.user_id]
                await self.bus.unsubscribe(user_channel(self.stores, conn.user_id))
        # While shutting down, clients move to another instance: count them out, announce nothing.
        await presence.disconnected(self.stores, conn.user_id, announce=not self.stopping)

    # -- delivery (called by the bus for each Redis message) -----------------------------

    def on_broadcast(self, raw: bytes) -> None:
        wire = text_frame(raw)
        for conn in list(self.connections):
            conn.push(wire)

    def on_user_event(self, user_id: int, raw: bytes) -> None:
        targets = self.by_user.get(user_id)
        if not targets:
            return
        event_id = loads(raw).get("id")
        wire = text_frame(raw)
        for conn in list(targets):
            conn.deliver(event_id, wire)

    def on_revoked(self, raw: bytes) -> None:
        """Sessions revoked anywhere (auth.sessions announces them): the guard's memo forgets
        them, and their open sockets here close at once, not only their next connection."""
        revoked = set(raw.decode().split(","))
        self.stores.live_sessions.forget(revoked)
        for conn in list(self.connections):
            if conn.session_id in revoked:
                self.spawn(conn.close(CLOSE_POLICY, "session revoked, log in again"))

    async def _refresh_presence(self) -> None:
        interval = max(self.settings.ws_heartbeat_interval, 1.0)
        while True:
            await asyncio.sleep(interval)
            counts = {uid: len(conns) for uid, conns in self.by_user.items()}
            if counts:
                try:
                    await presence.refresh(self.stores, counts)
                except Exception as exc:  # noqa: BLE001 - retried at the next heartbeat
                    log.warning("presence refresh failed: %s", exc)
