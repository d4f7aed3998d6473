"""Give memory back to the system after bursts of large WebSocket traffic.

Large frames (broadcast lines of tens of KB, read from one client and written to every other)
are allocated by the C allocator, not Python's small-object pools. Once freed, glibc keeps
those pages for reuse instead of returning them, so a burst leaves the process hundreds of MB
larger than it needs to be (docs/benchmarks.md, "Memory after large broadcasts"). The hub notes
the bytes of large traffic; once enough has gone through and the traffic paused, the trimmer
runs a full collection and `malloc_trim(0)`, which hands the free pages back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("nubo.memory")

CHECK_EVERY = 1.0  # seconds between looks at the counter
LARGE = 16 * 1024  # bytes from which a frame is counted: glibc serves smaller ones from its bins
FORCE_FACTOR = 8  # traffic that never pauses is trimmed anyway after this many thresholds


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS): there the trimmer only collects."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


class MemoryTrimmer:
    """Counts large traffic (`note`); trims after `after_bytes` of it and `idle` quiet seconds."""

    def __init__(self, after_bytes: int, idle: float) -> None:
        self.after_bytes = after_bytes
        self.idle = idle
        self.pending = 0
        self.last_noted = 0.0
        self.trims = 0
        self.task: asyncio.Task[None] | None = None
        self._trim = _malloc_trim()

    def note(self, nbytes: int, copies: int = 1) -> None:
        """A frame of nbytes went through (read, or written `copies` times)."""
        if nbytes >= LARGE:
            self.pending += nbytes * copies
            self.last_noted = time.monotonic()

    def start(self) -> None:
        if self.after_bytes > 0:  # 0: never trim
            self.task = asyncio.create_task(self._watch(), name="nubo-memory-trim")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def due(self, now: float) -> bool:
        if self.pending < self.after_bytes:
            return False
        return now - self.last_noted >= self.idle or self.pending >= FORCE_FACTOR * self.after_bytes

    def trim(self) -> None:
        self.pending = 0
        began = time.perf_counter()
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        self.trims += 1
        log.debug("memory trimmed in %.1f ms", (time.perf_counter() - began) * 1000)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            if self.due(time.monotonic()):
                self.trim()
