"""Blocks: idempotent, listed, undo follows, and hide two people from each other everywhere."""

from __future__ import annotations

import asyncio

import httpx

from nubo_backend.stores import Stores
from tests.factories import TestUser, make_user
from tests.polling import eventually


async def block(api: httpx.AsyncClient, blocker: TestUser, blocked: TestUser) -> None:
    response = await api.put(f"/users/{blocked.id}/block", headers=blocker.headers)
    assert response.json() == {"user_id": blocked.id, "blocked": True}, response.text


async def post(api: httpx.AsyncClient, user: TestUser, body: str) -> int:
    response = await api.post("/posts", json={"body": body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def notifications_of(api: httpx.AsyncClient, user: TestUser) -> list[tuple[str, int]]:
    items = (await api.get("/notifications", headers=user.headers)).json()["items"]
    return sorted((n["type"], n["data"]["actor_id"]) for n in items)


async def test_block_is_idempotent_and_listed_newest_first_in_pages(api: httpx.AsyncClient, stores: Stores):
    me, *others = [await make_user(stores) for _ in range(4)]
    for other in others:
        await block(api, me, other)
    await block(api, me, others[0])  # again: nothing changes
    first = (await api.get("/me/blocks", params={"limit": 2}, headers=me.headers)).json()
    assert [u["id"] for u in first["items"]] == [others[2].id, others[1].id]
    assert set(first["items"][0]) == {"id", "username", "display_name", "avatar_url", "blocked_at"}
    rest = (await api.get("/me/blocks", params={"cursor": first["next_cursor"]}, headers=me.headers)).json()
    assert ([u["id"] for u in rest["items"]], rest["next_cursor"]) == ([others[0].id], None)

    unblocked = await api.delete(f"/users/{others[1].id}/block", headers=me.headers)
    assert unblocked.json() == {"user_id": others[1].id, "blocked": False}
    again = await api.delete(f"/users/{others[1].id}/block", headers=me.headers)
    assert again.status_code == 200
    listed = (await api.get("/me/blocks", headers=me.headers)).json()["items"]
    assert [u["id"] for u in listed] == [others[2].id, others[0].id]
    assert (await api.get("/me/blocks", headers=others[0].headers)).json()["items"] == []  # mine only


async def test_blocking_yourself_an_unknown_user_or_signed_out_is_a_clear_client_error(
    api: httpx.AsyncClient, stores: Stores
):
    me = await make_user(stores)
    for method in ("PUT", "DELETE"):
        yourself = await api.request(method, f"/users/{me.id}/block", headers=me.headers)
        assert (yourself.status_code, yourself.json()["code"]) == (422, "self_block")
        unknown = await api.request(method, "/users/999999/block", headers=me.headers)
        assert (unknown.status_code, unknown.json()["code"]) == (404, "user_not_found")
        huge = await api.request(method, "/users/99999999999999999999/block", headers=me.headers)
        assert huge.status_code == 404
        signed_out = await api.request(method, f"/users/{me.id}/block")
        assert signed_out.status_code == 401
    bad_cursor = await api.get("/me/blocks", params={"cursor": "nope"}, headers=me.headers)
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (400, "invalid_cursor")


async def test_block_removes_follows_both_ways_and_their_counts(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{bob.id}/follow", headers=alice.headers)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    assert (await api.get(f"/users/{alice.id}")).json()["followers_count"] == 1  # (cached now)
    await block(api, alice, bob)
    for user in (alice, bob):
        profile = (await api.get(f"/users/{user.id}")).json()
        assert (profile["followers_count"], profile["following_count"]) == (0, 0)
    assert await stores.pg.fetchval("SELECT count(*) FROM follows") == 0


async def test_a_follow_across_a_block_is_refused_either_way(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await block(api, alice, bob)
    for follower, followed in ((bob, alice), (alice, bob)):
        refused = await api.post(f"/users/{followed.id}/follow", headers=follower.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "blocked")
    assert await stores.pg.fetchval("SELECT count(*) FROM follows") == 0


async def test_neither_sees_the_others_profile_posts_comments_or_likes(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    bobs = await post(api, bob, "bob's post")
    carols = await post(api, carol, "carol's post")
    await api.post(f"/posts/{carols}/comments", json={"body": "bob was here"}, headers=bob.headers)
    await api.put(f"/posts/{carols}/like", headers=bob.headers)
    await api.put(f"/posts/{carols}/like", headers=alice.headers)
    await api.post(f"/users/{carol.id}/follow", headers=bob.headers)
    for viewer in (alice, bob):  # warm every cache first
        await api.get("/posts", headers=viewer.headers)
        await api.get(f"/posts/{bobs}", headers=viewer.headers)
    await block(api, alice, bob)

    for viewer, other, others_post in ((alice, bob, bobs), (bob, alice, None)):
        gone = await api.get(f"/users/{other.id}", headers=viewer.headers)
        assert (gone.status_code, gone.json()["code"]) == (404, "user_not_found")
        assert (await api.get(f"/users/{other.username}", headers=viewer.headers)).status_code == 404
        assert (await api.get(f"/users/{other.id}/posts", headers=viewer.headers)).status_code == 404
        assert (await api.get(f"/users/{other.id}/followers", headers=viewer.headers)).status_code == 404
        front = (await api.get("/posts", headers=viewer.headers)).json()["items"]
        assert other.id not in {p["author"]["id"] for p in front} and front
        likers = (await api.get(f"/posts/{carols}/likes", headers=viewer.headers)).json()["items"]
        assert [u["id"] for u in likers] == [viewer.id]
        followers = (await api.get(f"/users/{carol.id}/followers", headers=viewer.headers)).json()["items"]
        assert other.id not in [u["id"] for u in followers]
        if others_post is not None:
            hidden = await api.get(f"/posts/{others_post}", headers=viewer.headers)
            assert (hidden.status_code, hidden.json()["code"]) == (404, "post_not_found")
            assert (await api.get(f"/posts/{others_post}/comments", headers=viewer.headers)).status_code == 404
            assert (await api.get(f"/posts/{others_post}/likes", headers=viewer.headers)).status_code == 404
    comments = (await api.get(f"/posts/{carols}/comments", headers=alice.headers)).json()["items"]
    assert comments == []
    # Everyone else still sees both of them.
    assert len((await api.get(f"/posts/{carols}/comments", headers=carol.headers)).json()["items"]) == 1
    assert (await api.get(f"/posts/{bobs}", headers=carol.headers)).status_code == 200
    assert (await api.get(f"/posts/{bobs}")).status_code == 200  # signed out: public, as always


async def test_nobody_likes_or_comments_across_a_block(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    alices = await post(api, alice, "mine")
    await block(api, alice, bob)
    for attempt in (
        api.put(f"/posts/{alices}/like", headers=bob.headers),
        api.post(f"/posts/{alices}/comments", json={"body": "hey"}, headers=bob.headers),
    ):
        refused = await attempt
        assert (refused.status_code, refused.json()["code"]) == (404, "post_not_found")
    counts = await stores.pg.fetchrow("SELECT like_count, comment_count FROM posts WHERE id = $1", alices)
    assert tuple(counts) == (0, 0)


async def test_no_notification_or_mention_crosses_a_block(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    carols = await post(api, carol, "carol's")
    await block(api, bob, alice)  # whoever blocks, it holds both ways
    await post(api, bob, f"hi @{alice.username}")
    await post(api, alice, f"hi @{bob.username}")
    await api.post(f"/posts/{carols}/comments", json={"body": f"@{alice.username} @{bob.username}"},
                   headers=carol.headers)
    # The mentions by Carol arrive; none between Alice and Bob does, before or after them.
    expected = [("mention.created", carol.id)]
    assert await eventually(lambda: notifications_of(api, alice), expected) == expected
    assert await eventually(lambda: notifications_of(api, bob), expected) == expected


async def test_notifications_from_before_the_block_are_hidden_too(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
    expected = [("follow.created", bob.id)]
    assert await eventually(lambda: notifications_of(api, alice), expected) == expected
    await block(api, alice, bob)
    assert await notifications_of(api, alice) == []
    await api.delete(f"/users/{bob.id}/block", headers=alice.headers)
    assert await notifications_of(api, alice) == expected


async def test_a_direct_conversation_refuses_messages_across_a_block_both_ways(
    api: httpx.AsyncClient, stores: Stores
):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    path = f"/conversations/{conversation['id']}/messages"
    sent = (await api.post(path, json={"body": "before", "client_id": "a-1"}, headers=bob.headers)).json()
    await block(api, alice, bob)
    for sender in (bob, alice):
        refused = await api.post(path, json={"body": "after", "client_id": "x"}, headers=sender.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "blocked")
    edit = await api.patch(f"/messages/{sent['id']}", json={"body": "edited"}, headers=bob.headers)
    assert (edit.status_code, edit.json()["code"]) == (403, "blocked")
    history = (await api.get(path, headers=alice.headers)).json()["items"]
    assert [m["body"] for m in history] == ["before"]  # a direct conversation keeps its history
    opened = await api.post("/conversations", json={"user_id": alice.id}, headers=carol.headers)
    assert opened.status_code == 201
    await block(api, carol, alice)
    new = await api.post("/conversations", json={"user_id": carol.id}, headers=bob.headers)
    assert new.status_code == 201
    across = await api.post("/conversations", json={"user_id": carol.id}, headers=alice.headers)
    assert across.status_code == 200  # the existing one is handed back, but stays closed to messages
    refused = await api.post(f"/conversations/{opened.json()['id']}/messages",
                             json={"body": "x", "client_id": "c-1"}, headers=alice.headers)
    assert refused.json()["code"] == "blocked"


async def test_a_new_direct_conversation_across_a_block_is_refused(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await block(api, alice, bob)
    for opener, other in ((bob, alice), (alice, bob)):
        refused = await api.post("/conversations", json={"user_id": other.id}, headers=opener.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "blocked")
    assert await stores.pg.fetchval("SELECT count(*) FROM conversations") == 0


async def test_a_group_keeps_working_but_each_side_no_longer_sees_the_others_messages(
    api: httpx.AsyncClient, stores: Stores
):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    group = (await api.post("/conversations", json={"title": "g", "member_ids": [bob.id, carol.id]},
                            headers=alice.headers)).json()
    path = f"/conversations/{group['id']}/messages"
    await api.post(path, json={"body": "bob before", "client_id": "b-1"}, headers=bob.headers)
    await block(api, bob, alice)
    for sender in (alice, bob, carol):
        sent = await api.post(path, json={"body": f"{sender.username} after", "client_id": f"{sender.id}-2"},
                              headers=sender.headers)
        assert sent.status_code == 201
    seen = {u.id: [m["body"] for m in (await api.get(path, headers=u.headers)).json()["items"]]
            for u in (alice, bob, carol)}
    assert seen[alice.id] == [f"{carol.username} after", f"{alice.username} after"]
    assert seen[bob.id] == [f"{carol.username} after", f"{bob.username} after", "bob before"]
    assert len(seen[carol.id]) == 4
    summary = (await api.get("/conversations", headers=alice.headers)).json()["items"][0]
    assert summary["last_message"]["body"] == f"{carol.username} after"

    async def created_for(user: TestUser) -> list[int]:
        docs = await stores.mongo["events"].find({"user_id": user.id, "type": "message.created"}).to_list()
        return sorted(d["data"]["sender_id"] for d in docs)

    everyone = sorted([bob.id, alice.id, bob.id, carol.id])
    assert await eventually(lambda: created_for(carol), everyone) == everyone
    assert await created_for(alice) == sorted([bob.id, alice.id, carol.id])  # Bob's one came before the block
    assert await created_for(bob) == sorted([bob.id, bob.id, carol.id])


async def test_a_groups_unread_count_leaves_out_the_messages_a_block_hides(api: httpx.AsyncClient, stores: Stores):
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    group = (await api.post("/conversations", json={"title": "g", "member_ids": [bob.id, carol.id]},
                            headers=alice.headers)).json()
    direct = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    await api.post(f"/conversations/{direct['id']}/messages", json={"body": "dm", "client_id": "d"},
                   headers=bob.headers)
    path = f"/conversations/{group['id']}/messages"
    for sender, n in ((bob, 1), (carol, 2), (bob, 3)):
        await api.post(path, json={"body": f"m{n}", "client_id": f"g{n}"}, headers=sender.headers)
    await block(api, bob, alice)

    async def unread(user: TestUser) -> dict[int, int]:
        items = (await api.get("/conversations", headers=user.headers)).json()["items"]
        return {c["id"]: c["unread_count"] for c in items}

    # Alice sees only Carol's message in the group; the direct conversation keeps its history.
    assert await unread(alice) == {group["id"]: 1, direct["id"]: 1}
    assert (await unread(carol))[group["id"]] == 2  # Carol sees everything, as before


async def test_a_follow_racing_a_block_is_undone_by_it_or_refused(api: httpx.AsyncClient, stores: Stores):
    # Both take the two users' rows in the same order (users.sql lock_user_pair): whichever
    # commits second sees the first. Never a follow left across a block, never a 500.
    for _ in range(12):
        alice, bob = await make_user(stores), await make_user(stores)
        followed, blocked = await asyncio.gather(
            api.post(f"/users/{bob.id}/follow", headers=alice.headers),
            api.put(f"/users/{alice.id}/block", headers=bob.headers),
        )
        # 403 when the block came first; 404 when the follow did, since the profile it answers
        # with is read after the block has hidden it; 200 or 201 when it answered before the block.
        assert followed.status_code in (200, 201, 403, 404), followed.text
        assert blocked.status_code in (200, 201, 204), blocked.text
        follows = await stores.pg.fetchval(
            "SELECT count(*) FROM follows WHERE (follower_id, followed_id) IN (($1, $2), ($2, $1))", alice.id, bob.id)
        counts = await stores.pg.fetch(
            "SELECT following_count, followers_count FROM users WHERE id = ANY($1)", [alice.id, bob.id])
        assert follows == 0
        assert all(tuple(row) == (0, 0) for row in counts)


async def test_search_and_tag_pages_honour_blocks(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores, "zoealice"), await make_user(stores, "zoebob")
    await post(api, alice, "zebra #stripes")
    await post(api, bob, "zebra #stripes")
    await block(api, bob, alice)
    for viewer in (alice, bob):
        users = (await api.get("/search/users", params={"q": "zoe"}, headers=viewer.headers)).json()["items"]
        assert [u["id"] for u in users] == [viewer.id]
        for found in (
            (await api.get("/search/posts", params={"q": "zebra"}, headers=viewer.headers)).json()["items"],
            (await api.get("/tags/stripes/posts", headers=viewer.headers)).json()["items"],
        ):
            assert [p["author"]["id"] for p in found] == [viewer.id]
    assert len((await api.get("/search/users", params={"q": "zoe"})).json()["items"]) == 2


async def test_unblocking_shows_both_again_without_restoring_follows(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    await api.post(f"/users/{bob.id}/follow", headers=alice.headers)
    bobs = await post(api, bob, "hello")
    await block(api, alice, bob)
    assert (await api.get(f"/posts/{bobs}", headers=alice.headers)).status_code == 404
    await api.delete(f"/users/{bob.id}/block", headers=alice.headers)
    assert (await api.get(f"/posts/{bobs}", headers=alice.headers)).status_code == 200
    assert (await api.get(f"/users/{bob.id}", headers=alice.headers)).json()["followed_by_me"] is False
    assert (await api.post(f"/users/{bob.id}/follow", headers=alice.headers)).status_code == 200
    assert [p["id"] for p in (await api.get("/feed", headers=alice.headers)).json()["items"]] == [bobs]


async def test_openapi_describes_the_block_and_mute_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    for verb in ("block", "mute"):
        route = paths[f"/users/{{user_id}}/{verb}"]
        for method in ("put", "delete"):
            operation = route[method]
            assert operation["tags"] == ["blocks"] and operation["security"]
            assert {"200", "401", "404", "422"} <= set(operation["responses"])
    for listing in ("/me/blocks", "/me/mutes"):
        names = {p["name"] for p in paths[listing]["get"]["parameters"]}
        assert {"limit", "cursor"} <= names
