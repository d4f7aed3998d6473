"""Password hashing with argon2id, always off the event loop.

argon2 is deliberately slow and memory hungry; run on the loop it would stall every other
request. It runs on a small executor of its own: a bounded number of hashes at once keeps
memory bounded (memory_cost KiB each) and leaves the default executor to everything else.

The executor is shared fairly: each caller names who the work is for (the account), and
one party has at most one hash in the executor at a time, the rest of theirs waiting on
the event loop. A flood on one account then queues behind itself while everyone else's
hashes take turns with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nubo_backend.settings import Settings

T = TypeVar("T")


class _Turns:
    """One lock per party, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def of(self, who: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(who, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[who] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[who]
            if users <= 1:
                del self._locks[who]
            else:
                self._locks[who] = (lock, users - 1)


class Passwords:
    """argon2id hashing with the configured cost, on a bounded thread pool."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=workers or min(4, os.cpu_count() or 1), thread_name_prefix="argon2"
        )
        # Verified against when the account does not exist, so that "no such user" costs
        # the same time as "wrong password" (no user enumeration by timing). Made by open().
        self._dummy_hash = ""
        self._turns = _Turns()

    @classmethod
    async def open(cls, settings: Settings, workers: int | None = None) -> Passwords:
        passwords = cls(settings, workers)
        passwords._dummy_hash = await passwords.hash(secrets.token_urlsafe(16), who="startup")
        return passwords

    async def _run(self, who: str, fn: Callable[..., T], *args: Any) -> T:
        async with self._turns.of(who):
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str, *, who: str) -> str:
        return await self._run(who, self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str, *, who: str) -> bool:
        return await self._run(who, self._verify_sync, password_hash, password)

    async def verify_dummy(self, password: str, *, who: str) -> bool:
        """Spend the time of a real verification, and fail."""
        await self.verify(self._dummy_hash, password, who=who)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash was made with other parameters than the configured ones."""
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
