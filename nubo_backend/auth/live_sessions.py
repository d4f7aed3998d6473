"""A per-instance memo of sessions found live in Redis, so that most authenticated requests
skip the Redis round trip of the session check.

It is only as fresh as this instance's knowledge of revocations, so:
- every revocation is published on the `sessions_revoked` channel (auth.service); the realtime
  bus hands it to `forget` on every instance, and the revoking instance forgets at once;
- the memo answers only while that subscription is live (`active`), and is emptied whenever
  the subscription (re)connects, since revocations published meanwhile were not heard;
- an entry also lapses after `ttl` seconds, which bounds how long an expired session lives on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class LiveSessions:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.active: Callable[[], bool] = lambda: False  # wired to the bus by the realtime hub
        self._live: dict[str, tuple[int, int, float]] = {}  # sid -> (uid, last_used, good until)
        self._revoked: dict[str, float] = {}  # sid -> when this instance heard of it

    def get(self, session_id: str) -> tuple[int, int] | None:
        """(owner, last_used) when known live, else None (ask Redis)."""
        if self.ttl <= 0 or not self.active():
            return None
        entry = self._live.get(session_id)
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            del self._live[session_id]
            return None
        return entry[0], entry[1]

    def remember(self, session_id: str, owner: int, last_used: int, asked_at: float) -> None:
        """Record what Redis answered at `asked_at` (monotonic), unless a revocation came since."""
        if self.ttl <= 0 or not self.active() or self._revoked.get(session_id, -1.0) >= asked_at:
            return
        if len(self._live) >= self.max_entries:
            del self._live[next(iter(self._live))]  # oldest first
        self._live[session_id] = (owner, last_used, asked_at + self.ttl)

    def forget(self, session_ids: Iterable[str]) -> None:
        now = time.monotonic()
        for session_id in session_ids:
            self._live.pop(session_id, None)
            self._revoked[session_id] = now
        if len(self._revoked) > self.max_entries:  # only revocations younger than ttl matter
            horizon = now - max(self.ttl, 1.0)
            self._revoked = {sid: at for sid, at in self._revoked.items() if at >= horizon}

    def clear(self) -> None:
        self._live.clear()
