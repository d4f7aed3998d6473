"""What an operator does with outbox rows the relay set aside (`nubo outbox`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from nubo_backend.settings import Settings


async def list_set_aside(settings: Settings) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.postgres_dsn, timeout=10)
    try:
        from nubo_backend.stores.sql import load_queries

        return [dict(row) async for row in load_queries().outbox.set_aside_rows(conn)]
    finally:
        await conn.close()


async def retry_set_aside(settings: Settings, ids: list[int] | None) -> list[int]:
    """Put rows back at the end of their lanes (all of them when ids is None); their new ids.
    A user whose event was set aside may have received later ones meanwhile: their socket
    fills the gap when it comes (gap fill), in id order."""
    conn = await asyncpg.connect(settings.postgres_dsn, timeout=10)
    try:
        from nubo_backend.stores.sql import load_queries

        async with conn.transaction():
            return [row["id"] async for row in load_queries().outbox.retry_set_aside(conn, ids=ids)]
    finally:
        await conn.close()
