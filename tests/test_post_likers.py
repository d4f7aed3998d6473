"""GET /posts/{id}/likes: who liked a post, most recent first, in stable pages."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user


async def _post(api: httpx.AsyncClient, author) -> int:
    response = await api.post("/posts", json={"body": "likeable"}, headers=author.headers)
    assert response.status_code == 201
    return response.json()["id"]


async def test_likers_are_listed_most_recent_first_and_readable_signed_out(api: httpx.AsyncClient, stores: Stores):
    author = await make_user(stores)
    post_id = await _post(api, author)
    fans = [await make_user(stores) for _ in range(3)]
    for fan in fans:
        assert (await api.put(f"/posts/{post_id}/like", headers=fan.headers)).status_code == 200
    body = (await api.get(f"/posts/{post_id}/likes")).json()
    assert [item["id"] for item in body["items"]] == [fan.id for fan in reversed(fans)]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert set(first) == {"id", "username", "display_name", "avatar_url", "liked_at"}
    assert first["username"] == fans[-1].username

    await api.delete(f"/posts/{post_id}/like", headers=fans[1].headers)
    body = (await api.get(f"/posts/{post_id}/likes")).json()
    assert [item["id"] for item in body["items"]] == [fans[2].id, fans[0].id]


async def test_pages_cover_every_liker_once_even_while_likes_arrive(api: httpx.AsyncClient, stores: Stores):
    author = await make_user(stores)
    post_id = await _post(api, author)
    fans = [await make_user(stores) for _ in range(7)]
    for fan in fans:
        await api.put(f"/posts/{post_id}/like", headers=fan.headers)
    seen, cursor, late = [], None, []
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await api.get(f"/posts/{post_id}/likes", params=params)).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        newcomer = await make_user(stores)  # a like newer than the cursor: on no later page
        await api.put(f"/posts/{post_id}/like", headers=newcomer.headers)
        late.append(newcomer.id)
    assert seen == [fan.id for fan in reversed(fans)]
    assert not set(seen) & set(late)
    likes = (await api.get(f"/posts/{post_id}")).json()["like_count"]
    assert likes == len(fans) + len(late)


async def test_unknown_post_and_bad_cursors_are_refused(api: httpx.AsyncClient, stores: Stores):
    assert (await api.get("/posts/999999999/likes")).json()["code"] == "post_not_found"
    post_id = await _post(api, await make_user(stores))
    for cursor in ["garbage!", "WzFd", "WyJub3QgYSBkYXRlIiwgMV0", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgMV0"]:
        # not base64 JSON; [1]; ["not a date", 1]; a date without a time zone
        response = await api.get(f"/posts/{post_id}/likes", params={"cursor": cursor})
        assert response.status_code == 400, (cursor, response.text)
        assert response.json()["code"] == "invalid_cursor"
