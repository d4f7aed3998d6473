"""Push notifications: Web Push (RFC 8030/8291/8292), APNs and FCM, fed from the outbox relay.

`queue_pushes` (called by the relay in its batch transaction) turns committed events into
durable jobs; `PushSender` (one per instance) delivers them. See docs/push.md.
"""

from nubo_backend.push.queue import queue_pushes

__all__ = ["queue_pushes"]
