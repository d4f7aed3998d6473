"""Reactions on messages over real HTTP: one emoji, idempotent, counted per emoji with the
viewer's flag, members only, announced, and blocks."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from nubo_backend.realtime.events import events_after
from nubo_backend.stores import Stores
from tests.factories import TestUser, make_user

THUMBS = "\U0001f44d"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme of five code points
FLAG = "\U0001f1eb\U0001f1f7"


async def _message(api: httpx.AsyncClient, sender: TestUser, *others: TestUser) -> tuple[int, int]:
    if len(others) == 1:
        response = await api.post("/conversations", json={"user_id": others[0].id}, headers=sender.headers)
    else:
        response = await api.post("/conversations", json={"title": "g", "member_ids": [o.id for o in others]},
                                  headers=sender.headers)
    cid = response.json()["id"]
    sent = await api.post(f"/conversations/{cid}/messages", json={"body": "hi"}, headers=sender.headers)
    return cid, sent.json()["id"]


def _path(message_id: int, emoji: str) -> str:
    return f"/messages/{message_id}/reactions/{quote(emoji)}"


async def _listed(api: httpx.AsyncClient, cid: int, user: TestUser) -> list[dict]:
    return (await api.get(f"/conversations/{cid}/messages", headers=user.headers)).json()["items"][0]["reactions"]


async def test_reactions_are_idempotent_and_counted_per_emoji(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    cid, mid = await _message(api, alice, bob)
    for _ in range(2):
        reacted = await api.put(_path(mid, THUMBS), headers=bob.headers)
        assert reacted.status_code == 200, reacted.text
    await api.put(_path(mid, THUMBS), headers=alice.headers)
    await api.put(_path(mid, FAMILY), headers=alice.headers)
    assert await _listed(api, cid, bob) == [{"emoji": THUMBS, "count": 2, "reacted_by_me": True},
                                            {"emoji": FAMILY, "count": 1, "reacted_by_me": False}]
    for _ in range(2):
        undone = await api.delete(_path(mid, THUMBS), headers=bob.headers)
        assert undone.json()["reactions"][0] == {"emoji": THUMBS, "count": 1, "reacted_by_me": False}


async def test_a_reaction_must_be_one_emoji(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    _, mid = await _message(api, alice, bob)
    for emoji in (FLAG, FAMILY, "1\ufe0f\u20e3", "\u2764\ufe0f"):
        assert (await api.put(_path(mid, emoji), headers=bob.headers)).status_code == 200, emoji
    for bad in ("a", "ok", THUMBS + THUMBS, "%", " ", "\u200d", "1"):
        response = await api.put(_path(mid, bad), headers=bob.headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["details"][0]["field"] == "emoji"


async def test_a_reaction_is_announced_to_the_members(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    cid, mid = await _message(api, alice, bob, carol)
    await api.put(_path(mid, THUMBS), headers=bob.headers)
    for user in (alice, bob, carol):
        event = (await events_after(stores, user.id, 0))[-1]
        assert event["type"] == "message.reaction"
        assert event["data"] == {"conversation_id": cid, "message_id": mid, "user_id": bob.id,
                                 "emoji": THUMBS, "added": True, "count": 1}


async def test_only_members_may_react(api: httpx.AsyncClient, stores: Stores):
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    _, mid = await _message(api, alice, bob)
    response = await api.put(_path(mid, THUMBS), headers=mallory.headers)
    assert (response.status_code, response.json()["code"]) == (403, "not_a_member")
    assert (await api.put(_path(999999, THUMBS), headers=bob.headers)).status_code == 404


async def test_a_deleted_message_takes_no_reaction_and_loses_its_own(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    cid, mid = await _message(api, alice, bob)
    await api.put(_path(mid, THUMBS), headers=bob.headers)
    await api.delete(f"/messages/{mid}", headers=alice.headers)
    assert (await api.put(_path(mid, THUMBS), headers=bob.headers)).status_code == 409
    assert await _listed(api, cid, bob) == []


async def test_reactions_across_a_block(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    direct_cid, direct_mid = await _message(api, alice, bob)
    group_cid, group_mid = await _message(api, alice, bob, carol)
    await api.put(_path(group_mid, THUMBS), headers=bob.headers)
    await api.put(f"/users/{bob.id}/block", headers=carol.headers)
    assert (await api.put(_path(direct_mid, THUMBS), headers=alice.headers)).status_code == 200
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    refused = await api.put(_path(direct_mid, FLAG), headers=bob.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "blocked")
    assert await _listed(api, group_cid, carol) == []  # bob's reaction is not counted for carol
