"""Waiting for effects that happen beside a response (events and notifications fan out after it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], expected: T, within: float = 5.0) -> T:
    """probe() until it returns expected (then returned) or `within` seconds pass (last value returned)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value == expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)
