"""Issue #26, item 7: a photo is hidden wherever the message or post carrying it is, so that a
block cannot be walked around by asking for media ids one after the other."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.media_support import jpeg


async def _photo(api: httpx.AsyncClient, user) -> dict:
    response = await api.post("/media", content=jpeg(), headers={**user.headers, "Content-Type": "image/jpeg"})
    assert response.status_code == 201, response.text
    return response.json()


async def _send_photo(api: httpx.AsyncClient, user, conversation_id: int) -> dict:
    media = await _photo(api, user)
    sent = await api.post(f"/conversations/{conversation_id}/messages",
                          json={"body": "look", "media_ids": [media["id"]]}, headers=user.headers)
    assert sent.status_code == 201, sent.text
    return media


async def _group_of_three(api: httpx.AsyncClient, stores: Stores) -> tuple:
    """Alice, Bob and Carol, and the group Carol made with the two others."""
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    group = (await api.post("/conversations", json={"title": "g", "member_ids": [alice.id, bob.id]},
                            headers=carol.headers)).json()
    return alice, bob, carol, group


async def test_a_group_photo_from_across_a_block_answers_as_if_it_did_not_exist(
        api: httpx.AsyncClient, stores: Stores, server_log: ServerLog) -> None:
    alice, bob, carol, group = await _group_of_three(api, stores)
    media = await _send_photo(api, bob, group["id"])
    assert (await api.put(f"/users/{bob.id}/block", headers=alice.headers)).status_code in (200, 204)

    answers = [await api.get(url, headers=alice.headers) for url in (media["url"], media["thumbnail_url"])]
    answers.append(await api.get(media["url"], params={"access_token": alice.token}))
    never_was = await api.get("/media/999999999", headers=alice.headers)
    assert [(r.status_code, r.json()) for r in answers] == [(never_was.status_code, never_was.json())] * 3
    assert never_was.json() == {"error": "Media not found", "code": "media_not_found"}

    # Nothing else changed: the other members still see it, and so does the sender.
    for reader in (carol, bob):
        assert (await api.get(media["url"], headers=reader.headers)).status_code == 200
    assert await stores.pg.fetchval("SELECT count(*) FROM media WHERE id = $1", media["id"]) == 1


async def test_the_block_hides_the_photo_both_ways_and_unblocking_shows_it_again(
        api: httpx.AsyncClient, stores: Stores, server_log: ServerLog) -> None:
    alice, bob, carol, group = await _group_of_three(api, stores)
    from_alice = await _send_photo(api, alice, group["id"])
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    seen_by_bob = await api.get(from_alice["url"], headers=bob.headers)
    assert (seen_by_bob.status_code, seen_by_bob.json()["code"]) == (404, "media_not_found")
    assert (await api.delete(f"/users/{bob.id}/block", headers=alice.headers)).status_code in (200, 204)
    assert (await api.get(from_alice["url"], headers=bob.headers)).status_code == 200


async def test_a_direct_conversation_keeps_its_photos_across_a_block(
        api: httpx.AsyncClient, stores: Stores, server_log: ServerLog) -> None:
    # As its messages: a direct conversation's history stays whole on both sides.
    alice, bob = await make_user(stores), await make_user(stores)
    direct = (await api.post("/conversations", json={"user_id": alice.id}, headers=bob.headers)).json()
    media = await _send_photo(api, bob, direct["id"])
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)
    assert (await api.get(media["url"], headers=alice.headers)).status_code == 200


async def test_a_post_photo_is_hidden_from_a_signed_in_viewer_as_its_post_is(
        api: httpx.AsyncClient, stores: Stores, server_log: ServerLog) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    media = await _photo(api, bob)
    post = await api.post("/posts", json={"body": "", "media_ids": [media["id"]]}, headers=bob.headers)
    assert post.status_code == 201, post.text
    await api.put(f"/users/{bob.id}/block", headers=alice.headers)

    hidden_post = await api.get(f"/posts/{post.json()['id']}", headers=alice.headers)
    hidden_media = await api.get(media["url"], headers=alice.headers)
    assert (hidden_post.status_code, hidden_media.status_code) == (404, 404)
    assert hidden_media.json()["code"] == "media_not_found"
    assert (await api.get(media["url"])).status_code == 200  # public, as the post is to anyone signed out
