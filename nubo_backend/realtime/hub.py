"""The connections this instance holds, per user, and delivery of bus messages to them.

Each message is parsed and framed once, then the same bytes are pushed to every target
connection: the per-connection cost of a broadcast is one non-blocking socket write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from nubo_backend.auth.tokens import AccessClaims, InvalidToken, TokenVerifier
from nubo_backend.jsonutil import loads
from nubo_backend.observability.memory import MemoryTrimmer
from nubo_backend.realtime.bus import Bus
from nubo_backend.realtime.connection import CLOSE_GOING_AWAY, CLOSE_POLICY, Connection, FrameBudget
from nubo_backend.realtime.events import user_channel
from nubo_backend.realtime.frames import text_frame
from nubo_backend.realtime.heartbeat import Heartbeat
from nubo_backend.realtime.presence import Presence
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.realtime")

SHUTDOWN_REASON = "server shutting down, reconnect"
RECHECK_CHUNK = 500  # sockets caught up and re-checked at a time after a bus reconnect


class Hub:
    def __init__(self, stores: Stores, token_verifier: TokenVerifier) -> None:
        self.stores = stores
        self.token_verifier = token_verifier
        self.settings = stores.settings
        self.bus = Bus(stores)
        self.connections: set[Connection] = set()
        self.by_user: dict[int, list[Connection]] = {}
        self.budgets: dict[int, FrameBudget] = {}  # per user, while the user holds a socket here
        self.subscribing: dict[int, asyncio.Future[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        # This instance's field in every presence hash: unique per process and per start.
        instance_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.presence = Presence(stores, instance_id, self.by_user)
        self.heartbeat = Heartbeat(self.settings.ws_heartbeat_interval, self.settings.ws_idle_timeout, self.connections)
        self.stopping = False
        self.memory = MemoryTrimmer(self.settings.memory_trim_after_bytes, self.settings.memory_trim_idle)

    def start(self) -> None:
        self.bus.listen(self.stores.keys.broadcast_channel, self.on_broadcast)
        self.bus.listen(self.stores.keys.revocation_channel, self.on_revoked)
        # The auth guard's memo of live sessions is safe only while revocations are heard.
        memo = self.stores.live_sessions
        self.bus.on_connect.append(memo.clear)
        memo.active = self.bus.connected.is_set
        self.bus.on_live.append(lambda: self.spawn(self._after_reconnect()))
        self.bus.start()
        self.presence.start()
        self.heartbeat.start()
        self.memory.start()

    async def shutdown(self) -> None:
        """Tell every client to reconnect elsewhere (1001), then leave Redis."""
        self.stopping = True
        self.presence.announce = False  # clients move to another instance: count them out, quietly
        self.memory.stop()
        self.heartbeat.stop()
        await asyncio.gather(
            *(c.close(CLOSE_GOING_AWAY, SHUTDOWN_REASON) for c in list(self.connections)),
            return_exceptions=True,
        )
        await self.presence.stop()
        await self.bus.stop()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job tied to the hub (kept referenced until done)."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- registration --------------------------------------------------------------------

    def user_budget(self, user_id: int) -> FrameBudget:
        """The frame budget shared by every socket of user_id on this instance."""
        budget = self.budgets.get(user_id)
        if budget is None:
            budget = self.budgets[user_id] = FrameBudget(self.settings.ws_user_rate_limit)
        return budget

    async def attach(self, conn: Connection) -> int | None:
        """Hold conn; the user's channel is live before this returns (events are then buffered).
        Returns the user's connections on every instance, this one included (None: unknown)."""
        uid = conn.user_id
        self.connections.add(conn)
        conn.user_budget = self.user_budget(uid)
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
        rank = len(held)  # this socket's place among the user's sockets here
        others = await self.presence.counted(uid)
        return None if others is None else others + rank

    async def detach(self, conn: Connection) -> None:
        conn.release()
        self.connections.discard(conn)
        held = self.by_user.get(conn.user_id)
        if held is not None and conn in held:
            held.remove(conn)
            if not held:
                del self.by_user[conn.user_id]
                self.budgets.pop(conn.user_id, None)
                await self.bus.unsubscribe(user_channel(self.stores, conn.user_id))
        self.presence.changed(conn.user_id)

    # -- delivery (called by the bus for each Redis message) -----------------------------

    def on_broadcast(self, raw: bytes) -> None:
        self.memory.note(len(raw), len(self.connections))
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

    async def _after_reconnect(self) -> None:
        """The bus was away: events and revocations published meanwhile never reached us. Each
        socket catches up from the journal, and each session is asked of Redis again (a logout
        while we were deaf, or a Redis restarted empty, closes its sockets now)."""
        held = list(self.connections)
        if not held:
            return
        log.info("bus live again: catching up %d connection(s)", len(held))
        for start in range(0, len(held), RECHECK_CHUNK):
            chunk = held[start:start + RECHECK_CHUNK]
            try:  # sessions first: a revoked one gets nothing more
                owners = await self._session_owners([conn.session_id for conn in chunk])
            except (RedisError, OSError) as exc:
                log.warning("session re-check after reconnect failed: %s", exc)
                owners = {conn.session_id: conn.user_id for conn in chunk}
            live = []
            for conn in chunk:
                if owners.get(conn.session_id) == conn.user_id:
                    live.append(conn)
                else:
                    self.spawn(conn.close(CLOSE_POLICY, "session revoked, log in again"))
            await asyncio.gather(*(conn.catch_up() for conn in live), return_exceptions=True)

    async def _session_owners(self, session_ids: list[str]) -> dict[str, int | None]:
        keys = self.stores.keys
        async with self.stores.redis.pipeline(transaction=False) as pipe:
            for sid in session_ids:
                pipe.hget(keys("sess", sid), "uid")
            owners = await pipe.execute()
        return {sid: int(uid) if uid is not None else None for sid, uid in zip(session_ids, owners, strict=True)}

    async def verify_token(self, token: str) -> AccessClaims | None:
        """A new access token for an open socket (`refresh`): signed, unexpired, session live."""
        try:
            claims = self.token_verifier.verify(token)
        except InvalidToken:
            return None
        owner = (await self._session_owners([claims.session_id]))[claims.session_id]
        return claims if owner == claims.user_id else None
