"""PostgreSQL: the asyncpg pool and its health check."""

from __future__ import annotations

import time

import asyncpg

IDLE_CHECK_AFTER = 5.0  # seconds idle after which a pooled connection is checked before use
IDLE_CHECK_TIMEOUT = 1.0


class _Liveness:
    """The pool's release and acquire hooks: undo a transaction left open, and check a
    connection that sat idle before handing it out.

    A connection can go silent while idle in the pool (a NAT or load balancer forgot it); its
    first statement would wait out command_timeout, then asyncpg's cancel request as long
    again (10 s with the defaults). One round trip with a short timeout finds out first; on
    no answer the connection is dropped, and every other idle one with it (they went the same
    way): the request that found it answers 503 at once, the next ones get new connections."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.released: dict[int, float] = {}  # backend pid -> when it went back to the pool

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Cheaper than asyncpg's default reset query, sent on every release: the app sets no
        session state, LISTENs nowhere and takes no advisory locks on pooled connections, so
        only a transaction left open (a bug) needs undoing."""
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        if len(self.released) > 10_000:  # pids of connections closed while idle
            self.released.clear()
        self.released[conn.get_server_pid()] = time.monotonic()

    async def setup(self, conn: asyncpg.Connection) -> None:
        released = self.released.pop(conn.get_server_pid(), None)
        if released is None or time.monotonic() - released < IDLE_CHECK_AFTER:
            return
        try:
            await conn.execute("SELECT 1", timeout=IDLE_CHECK_TIMEOUT)
        except Exception:
            conn.terminate()
            if self.pool is not None:
                await self.pool.expire_connections()
            raise


async def open_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 20, command_timeout: float | None = 5.0,
    idle_in_transaction_timeout: float | None = 10.0,
) -> asyncpg.Pool:
    """The pool every request and the relay draw from.

    Both timeouts are for a connection that goes silent without closing (a NAT or load
    balancer forgetting it, a half-dead host): `command_timeout` bounds every statement on the
    client side, ROLLBACK and the pool's reset included, which `asyncio.timeout` around a
    transaction cannot (the ROLLBACK on the way out of it would wait for ever); and the server
    ends a transaction left idle that long, so a client that vanished mid-transaction does not
    hold its locks (the relay's advisory lock) for ever."""
    liveness = _Liveness()
    server_settings = {}
    if idle_in_transaction_timeout:
        server_settings["idle_in_transaction_session_timeout"] = str(int(idle_in_transaction_timeout * 1000))
    # Statement cache stays on: aiosql sends the same texts again and again.
    pool = await asyncpg.create_pool(
        dsn, min_size=min(min_size, max_size), max_size=max_size, timeout=5, reset=liveness.reset,
        setup=liveness.setup, command_timeout=command_timeout or None, server_settings=server_settings,
    )
    liveness.pool = pool
    return pool


async def check(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")
