"""Password hashing with argon2id, always off the event loop.

argon2 is deliberately slow and memory hungry; run on the loop it would stall every other
request. It runs on a small executor of its own: a bounded number of hashes at once keeps
memory bounded (memory_cost KiB each) and leaves the default executor to everything else.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nubo_backend.settings import Settings

T = TypeVar("T")


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

    @classmethod
    async def open(cls, settings: Settings, workers: int | None = None) -> Passwords:
        passwords = cls(settings, workers)
        passwords._dummy_hash = await passwords.hash(secrets.token_urlsafe(16))
        return passwords

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify_sync, password_hash, password)

    async def verify_dummy(self, password: str) -> bool:
        """Spend the time of a real verification, and fail."""
        await self.verify(self._dummy_hash, password)
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
