"""What a client saw, before it smoothed anything over: `EventStats` for the real-time stream.

The stream de-duplicates and resumes by itself, which is what an application wants and what
a test of the server must not be fooled by: a server that sent an event twice looks, after
de-duplication, like one that did not. These counters keep what was received and what was
dropped, so that a caller can tell the two apart (the fault suite asserts on them).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

# How many of the newest ids received are remembered, to tell a repeat (an id received
# before) from a late event (an id below the newest that never came). Older ids count as repeats.
_REMEMBERED = 4096


@dataclass
class EventStats:
    """Counters of one `Realtime` stream, kept across reconnections and re-logins."""

    frames: int = 0  # text frames received, of any kind
    events: int = 0  # per-user events received (those with an id), the dropped ones included
    duplicates: int = 0  # events dropped: their id was received before
    out_of_order: int = 0  # events dropped: their id is below the newest received, and never came before
    gaps: int = 0  # events whose id skipped ahead (ids between the newest received and it never came)
    reconnects: int = 0  # sockets that reached `ready` after the first one
    resumes: int = 0  # sockets that reached `ready` having asked for `last_event_id`
    resyncs: int = 0  # `resync_required` frames
    failed_attempts: int = 0  # connection attempts that ended before `ready`
    closes: Counter[int] = field(default_factory=Counter)  # close codes of sockets that had been ready
    _recent: deque[int] = field(default_factory=deque, repr=False, compare=False)
    _recent_set: set[int] = field(default_factory=set, repr=False, compare=False)

    @property
    def delivered(self) -> int:
        """Per-user events passed on to the application."""
        return self.events - self.duplicates - self.out_of_order

    def event(self, event_id: int, newest: int | None) -> bool:
        """Count an event arriving when `newest` is the newest id received; whether to keep it."""
        self.events += 1
        if newest is not None and event_id <= newest:
            remembered = event_id in self._recent_set or not self._recent or event_id < self._recent[0]
            if remembered:
                self.duplicates += 1
            else:
                self.out_of_order += 1
            return False
        if newest is not None and event_id > newest + 1:
            self.gaps += 1
        self._recent.append(event_id)
        self._recent_set.add(event_id)
        if len(self._recent) > _REMEMBERED:
            self._recent_set.discard(self._recent.popleft())
        return True
