"""PostgreSQL: the asyncpg pool, its health check, and a LISTEN connection kept open."""

from __future__ import annotations

import asyncio

import asyncpg


async def _reset(conn: asyncpg.Connection) -> None:
    """Cheaper than asyncpg's default reset query, sent on every release: the app sets no
    session state, LISTENs nowhere and takes no advisory locks on pooled connections, so only
    a transaction left open (a bug) needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
    server_settings = {}
    if idle_in_transaction_timeout:
        server_settings["idle_in_transaction_session_timeout"] = str(int(idle_in_transaction_timeout * 1000))
    # Statement cache stays on: aiosql sends the same texts again and again.
    return await asyncpg.create_pool(
        dsn, min_size=min(min_size, max_size), max_size=max_size, timeout=5, reset=_reset,
        command_timeout=command_timeout or None, server_settings=server_settings,
    )


async def check(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")


async def listen_forever(dsn: str, channel: str, wake: asyncio.Event, retry: float) -> None:
    """Hold a LISTEN connection on `channel` (its own, not the pool's), reconnecting every
    `retry` seconds while PostgreSQL is away, and set `wake` at every NOTIFY, and once at every
    (re)connection for what was committed while not listening. Runs until cancelled."""
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda *_, lost=lost: lost.set())
            await conn.add_listener(channel, lambda *_: wake.set())
            wake.set()
            await lost.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the listener's own poll covers us until the next attempt
            await asyncio.sleep(retry)
        finally:
            if conn is not None and not conn.is_closed():
                conn.terminate()
