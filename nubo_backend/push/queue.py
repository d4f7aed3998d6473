"""Which committed events become pushes, for whom: the jobs the relay writes in its batch.

Called by the outbox relay inside its batch transaction (`queue_pushes`), so a push job exists
exactly when its event committed and was relayed, and a batch redone after a crash inserts no
job twice (one per event and subscription). It never asks Redis: whether the recipient holds
a live socket is decided by the sender when the job falls due, after the grace.

Kinds pushed (each an alert a subscription can turn off): `message` (message.created, to the
conversation's members but the sender), `mention`, `comment`, `like`, `follow` (their
notifications). Blocks and mutes apply as for notifications: the notification events arrive
already filtered (blocks/visibility.heard); messages are filtered here the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from nubo_backend.jsonutil import dumps_str, loads
from nubo_backend.stores import Stores

KINDS = {
    "message.created": "message",
    "mention.created": "mention",
    "comment.created": "comment",
    "like.created": "like",
    "follow.created": "follow",
}
ALERTS = tuple(KINDS.values())  # every kind a subscription may turn off (on unless turned off)
POLICIES = ("all", "followed", "follower", "none")
TITLES = {
    "message": "New message",
    "mention": "You were mentioned",
    "comment": "New comment",
    "like": "New like",
    "follow": "New follower",
}
PREVIEW_CHARS = 100  # keeps every payload far below Web Push's 4 KB
IDS = ("conversation_id", "post_id", "comment_id")


def _payload(kind: str, event_id: int, data: Mapping[str, Any], actor_id: int, preview: bool) -> str:
    """What reaches the device: the kind, the ids to fetch, and a short preview (a setting)."""
    payload: dict[str, Any] = {"kind": kind, "event_id": event_id, "actor_id": actor_id}
    if kind == "message":
        payload["conversation_id"] = data["conversation_id"]
        payload["message_id"] = data["id"]
    else:
        payload.update({k: data[k] for k in IDS if k in data})
    payload["title"] = TITLES[kind]
    text = data.get("body") if kind == "message" else None
    payload["body"] = text[:PREVIEW_CHARS] if preview and isinstance(text, str) and text else TITLES[kind]
    return dumps_str(payload)


async def queue_pushes(conn: asyncpg.Connection, stores: Stores, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the push jobs the relayed outbox rows warrant, in the relay's transaction."""
    wanted: list[tuple[str, int, int, int, dict[str, Any]]] = []  # kind, recipient, event id, actor, data
    for row in rows:
        kind = KINDS.get(row["type"])
        if kind is None:
            continue
        data = loads(row["data"])
        actor = data.get("sender_id") if kind == "message" else data.get("actor_id")
        if actor is None:
            continue
        for uid, eid in zip(row["recipients"], row["event_ids"], strict=True):
            if uid != actor:
                wanted.append((kind, uid, eid, actor, data))
    if not wanted:
        return
    q = stores.sql.push
    subscriptions: dict[int, list[asyncpg.Record]] = {}
    async for sub in q.subscriptions_of_users(conn, user_ids=sorted({w[1] for w in wanted})):
        subscriptions.setdefault(sub["user_id"], []).append(sub)
    wanted = [w for w in wanted if w[1] in subscriptions]
    if not wanted:
        return
    # Messages reach members a block or mute stands between (the conversation is shared);
    # their pushes do not. Notifications were filtered before they were announced.
    messages = sorted({(w[3], w[1]) for w in wanted if w[0] == "message"})
    silenced = set()
    if messages:
        rows_ = q.silenced_pairs(conn, actor_ids=[a for a, _ in messages], user_ids=[u for _, u in messages])
        silenced = {(r["actor_id"], r["user_id"]) async for r in rows_}
    follows = await _follows_for_policies(conn, stores, wanted, subscriptions)

    preview = stores.settings.push_preview
    jobs: dict[str, list[Any]] = {k: [] for k in ("subscription_ids", "event_ids", "kinds", "payloads",
                                                  "urgencies", "topics", "ttls")}
    for kind, uid, eid, actor, data in wanted:
        if (actor, uid) in silenced:
            continue
        payload = None
        for sub in subscriptions[uid]:
            if not _wants(sub, kind, uid, actor, follows):
                continue
            payload = payload or _payload(kind, eid, data, actor, preview)
            jobs["subscription_ids"].append(sub["id"])
            jobs["event_ids"].append(eid)
            jobs["kinds"].append(kind)
            jobs["payloads"].append(payload)
            jobs["urgencies"].append("high" if kind == "message" else "normal")
            # One pending push per conversation: a phone offline for a while gets the latest.
            jobs["topics"].append(f"conversation-{data['conversation_id']}" if kind == "message" else None)
            jobs["ttls"].append(float(stores.settings.push_ttl))
    if jobs["subscription_ids"]:
        await q.insert_jobs(conn, delay=float(stores.settings.push_grace), **jobs)


def _wants(sub: Mapping[str, Any], kind: str, uid: int, actor: int, follows: set[tuple[int, int]]) -> bool:
    if loads(sub["alerts"]).get(kind, True) is False:
        return False
    policy = sub["policy"]
    if policy == "followed":  # only from people the user follows
        return (uid, actor) in follows
    if policy == "follower":  # only from people who follow the user
        return (actor, uid) in follows
    return policy == "all"


async def _follows_for_policies(
    conn: asyncpg.Connection, stores: Stores, wanted: list[tuple[str, int, int, int, dict[str, Any]]],
    subscriptions: dict[int, list[asyncpg.Record]],
) -> set[tuple[int, int]]:
    """The (follower, followed) pairs the subscriptions' policies ask about, that exist."""
    pairs: set[tuple[int, int]] = set()
    for _, uid, _, actor, _ in wanted:
        policies = {sub["policy"] for sub in subscriptions[uid]}
        if "followed" in policies:
            pairs.add((uid, actor))
        if "follower" in policies:
            pairs.add((actor, uid))
    if not pairs:
        return set()
    ordered = sorted(pairs)
    rows = stores.sql.push.follows_among(
        conn, follower_ids=[a for a, _ in ordered], followed_ids=[b for _, b in ordered]
    )
    return {(r["follower_id"], r["followed_id"]) async for r in rows}
