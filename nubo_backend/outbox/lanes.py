"""Relay lanes: which lane an outbox row travels in.

A personal event's recipients are split by lane, `user id % lanes`, so one user's events are
always in one lane and go out in id order; lanes are drained in parallel, each under its own
lock, by whichever instance takes it. Events for an author's audience (live-only) travel in
audience lanes, numbered below zero, so a large audience being walked never delays anyone's
messages. Changing the number of lanes is safe once the outbox is empty (docs/scaling.md).
"""

from __future__ import annotations

# Recipients per outbox row: an event for a large group is split into rows of this many, so no
# single row can make a batch larger than a batch may be.
ROW_RECIPIENTS = 500


def lane_of(user_id: int, lanes: int) -> int:
    """The personal lane of a recipient."""
    return user_id % lanes


def audience_lane(author_id: int, lanes: int) -> int:
    """The audience lane of an author's live-only events (-1 .. -lanes)."""
    return -1 - author_id % lanes


def all_lanes(lanes: int) -> list[int]:
    """Every lane a relay with this setting drains: personal ones, then audience ones."""
    return [*range(lanes), *(-1 - n for n in range(lanes))]
