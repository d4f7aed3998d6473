"""Durable announcements: the transactional outbox between a committed change and its events.

Two halves, one job: whatever a transaction announces is delivered, once per recipient, in
commit order, whatever fails and whenever it comes back.

- `announce.py`, called by the services inside their own transaction: numbers each
  recipient's events (PostgreSQL `event_sequences`) and writes them to the `outbox` table, so
  the change and its announcement commit or roll back together.
- `relay.py`, run by every instance, a task per lane (`lanes.py`): journals outbox rows in
  MongoDB (30 days, for resume), stores the notifications among them, publishes them on
  Redis, then deletes them; audience rows (a post to followers) are served in pieces
  (`audience.py`). A store that is down delays this; the rows wait, and any instance still
  alive carries on. Rows that fail for good are set aside (`set_aside.py`).

Sockets drop an id they already have, so a batch published twice (a crash between the
publish and the delete) still reaches each socket once.
"""

from nubo_backend.outbox.announce import AudienceEvent, Event, announce, notification

__all__ = ["AudienceEvent", "Event", "announce", "notification"]
