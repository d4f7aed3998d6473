"""Hashtags through the real server: parsed and stored with posts, paged by tag, trending."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from nubo_backend.tags.hashtags import MAX_TAG_LENGTH, MAX_TAGS, tags_in
from nubo_backend.tags.service import trending_key
from tests.factories import make_user


def test_tags_are_folded_distinct_and_in_order() -> None:
    text = "#Café au lait #cafe #CAFE, #Été_2026! and #python3"
    assert tags_in(text) == ["cafe", "ete_2026", "python3"]


def test_what_is_not_a_tag() -> None:
    assert tags_in("issue #12, a#b, &#39; ## #-x #") == []


def test_a_tag_longer_than_the_limit_is_ignored_not_cut() -> None:
    assert tags_in("#" + "a" * 500 + " #ok") == ["ok"]
    assert tags_in("#" + "b" * MAX_TAG_LENGTH) == ["b" * MAX_TAG_LENGTH]


def test_tags_per_post_are_bounded() -> None:
    assert len(tags_in(" ".join(f"#tag{n}" for n in range(MAX_TAGS + 5)))) == MAX_TAGS


async def create(api: httpx.AsyncClient, headers: dict[str, str], body: str) -> dict:
    response = await api.post("/posts", json={"body": body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def tag_page(api: httpx.AsyncClient, tag: str, **params: object) -> list[int]:
    response = await api.get(f"/tags/{tag}/posts", params=params)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


async def test_a_post_carries_its_tags(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    post = await create(api, alice.headers, "Rentrée #Paris #café #paris")
    assert post["tags"] == ["paris", "cafe"]
    assert (await api.get(f"/posts/{post['id']}")).json()["tags"] == ["paris", "cafe"]
    listed = (await api.get("/posts", headers=alice.headers)).json()["items"]
    assert listed[0]["tags"] == ["paris", "cafe"]


async def test_a_500_character_tag_is_ignored_and_the_post_published(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice = await make_user(stores)
    post = await create(api, alice.headers, "#" + "x" * 500)
    assert post["tags"] == []
    assert await stores.pg.fetchval("SELECT count(*) FROM post_tags") == 0


async def test_a_tags_posts_come_newest_first_in_pages(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    ids = [(await create(api, (alice, bob)[n % 2].headers, f"n{n} #Sunset"))["id"] for n in range(5)]
    await create(api, alice.headers, "no tag, just sunset")
    assert await tag_page(api, "sunset") == ids[::-1]
    assert await tag_page(api, "SunSet") == ids[::-1]
    assert await tag_page(api, "%23sunset") == ids[::-1]  # "#sunset", encoded
    accented = await create(api, alice.headers, "#Été")
    assert await tag_page(api, "été") == await tag_page(api, "ETE") == [accented["id"]]
    first = (await api.get("/tags/sunset/posts", params={"limit": 3})).json()
    second = (await api.get("/tags/sunset/posts", params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [p["id"] for p in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert await tag_page(api, "unused") == []


async def test_editing_a_post_replaces_its_tags(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    post = await create(api, alice.headers, "#old and #kept")
    edited = await api.patch(f"/posts/{post['id']}", json={"body": "#kept and #new"}, headers=alice.headers)
    assert edited.status_code == 200 and edited.json()["tags"] == ["kept", "new"]
    assert await tag_page(api, "old") == []
    assert await tag_page(api, "new") == [post["id"]]


async def test_a_deleted_post_leaves_its_tag_pages(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    post = await create(api, alice.headers, "#gone")
    assert (await api.delete(f"/posts/{post['id']}", headers=alice.headers)).status_code == 204
    assert await tag_page(api, "gone") == []


async def test_a_tag_that_cannot_exist_is_a_422(api: httpx.AsyncClient) -> None:
    for tag in ("x" * 500, "x" * (MAX_TAG_LENGTH + 1), "no-dash", "123", "%21%21"):
        response = await api.get(f"/tags/{tag}/posts")
        assert response.status_code == 422, tag
        assert response.json()["code"] == "invalid_tag"


async def trending(api: httpx.AsyncClient) -> list[tuple[str, int]]:
    response = await api.get("/tags/trending")
    assert response.status_code == 200
    return [(t["tag"], t["uses"]) for t in response.json()["items"]]


async def test_trending_counts_the_last_day_most_used_first(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    for body in ("#b #a", "#a", "#a #c", "#b", "#old"):
        await create(api, alice.headers, body)
    await stores.pg.execute("UPDATE post_tags SET created_at = now() - interval '25 hours' WHERE tag = 'old'")
    assert await trending(api) == [("a", 3), ("b", 2), ("c", 1)]


async def test_trending_is_cached(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    await create(api, alice.headers, "#first")
    assert await trending(api) == [("first", 1)]
    assert await stores.redis.exists(trending_key(stores))
    await create(api, alice.headers, "#second")
    assert await trending(api) == [("first", 1)]  # served from Redis until it expires
    await stores.redis.delete(trending_key(stores))
    assert await trending(api) == [("first", 1), ("second", 1)]


async def test_openapi_describes_the_tag_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    assert paths["/tags/trending"]["get"]["tags"] == ["tags"]
    params = {p["name"] for p in paths["/tags/{tag}/posts"]["get"]["parameters"]}
    assert {"tag", "limit", "cursor"} <= params
