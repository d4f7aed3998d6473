"""Search people and posts through the real server: folding, ranking, paging, hostile queries."""

from __future__ import annotations

import httpx

from nubo_backend.search.service import MAX_QUERY_LENGTH
from nubo_backend.stores import Stores
from tests.factories import make_user


async def named(stores: Stores, username: str, display_name: str = "") -> int:
    user = await make_user(stores, username)
    await stores.pg.execute("UPDATE users SET display_name = $1 WHERE id = $2", display_name, user.id)
    return user.id


async def usernames(api: httpx.AsyncClient, q: str, **params: object) -> list[str]:
    response = await api.get("/search/users", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()["items"]]


async def post(api: httpx.AsyncClient, headers: dict[str, str], body: str) -> int:
    response = await api.post("/posts", json={"body": body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def found_posts(api: httpx.AsyncClient, q: str, **params: object) -> list[int]:
    response = await api.get("/search/posts", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


async def walk(api: httpx.AsyncClient, path: str, q: str, limit: int, key: str) -> list[object]:
    seen, cursor = [], None
    for _ in range(50):  # bounded: a cursor loop must end
        params = {"q": q, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = (await api.get(path, params=params)).json()
        seen += [item[key] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pages never ended")


async def test_user_search_ignores_case_and_accents(api: httpx.AsyncClient, stores: Stores) -> None:
    await named(stores, "zoe_m")
    await named(stores, "zed", "Zoé Durand")
    await named(stores, "bob", "Bob")
    for q in ("Zoé", "zoe", "ZOE", "zoé"):
        assert sorted(await usernames(api, q)) == ["zed", "zoe_m"]


async def test_user_search_ranks_username_then_prefix_then_display_name(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    await named(stores, "xanna", "Joannie")  # q only inside words: rank 3
    await named(stores, "bob", "Anne Marie")  # a display-name word starts with q: rank 2
    await named(stores, "annabel")  # username prefix: rank 1
    await named(stores, "ann")  # the username itself: rank 0
    assert await usernames(api, "Ann") == ["ann", "annabel", "bob", "xanna"]


async def test_user_search_pages_without_repeats_or_gaps(api: httpx.AsyncClient, stores: Stores) -> None:
    for n in range(7):
        await named(stores, f"pat{n}", "Pat" if n % 2 else "")
    whole = await usernames(api, "pat", limit=100)
    assert len(whole) == 7
    assert await walk(api, "/search/users", "pat", 2, "username") == whole


async def test_user_search_treats_like_wildcards_as_text(api: httpx.AsyncClient, stores: Stores) -> None:
    await named(stores, "carol_9")
    await named(stores, "carolx9")
    assert await usernames(api, "carol_") == ["carol_9"]
    assert await usernames(api, "%") == []


async def test_post_search_finds_french_and_english_words_accents_folded(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice = await make_user(stores)
    french = await post(api, alice.headers, "Un café crème à l'Élysée, s'il vous plaît")
    english = await post(api, alice.headers, "The quick brown fox jumps over the lazy dog")
    await post(api, alice.headers, "nothing to see here")
    assert await found_posts(api, "cafe creme") == [french]
    assert await found_posts(api, "CAFÉ élysée") == [french]
    assert await found_posts(api, "elysee") == [french]
    assert await found_posts(api, "quick FOX") == [english]
    assert await found_posts(api, "quick cat") == []  # every word must be there


async def test_post_search_ranks_better_matches_first_and_returns_whole_posts(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice = await make_user(stores)
    once = await post(api, alice.headers, "rain today #weather")
    thrice = await post(api, alice.headers, "rain, rain and more rain")
    response = await api.get("/search/posts", params={"q": "rain"}, headers=alice.headers)
    items = response.json()["items"]
    assert [p["id"] for p in items] == [thrice, once]
    assert items[1]["tags"] == ["weather"] and items[1]["liked_by_me"] is False
    assert items[1]["author"]["id"] == alice.id


async def test_post_search_pages_without_repeats_or_gaps(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    for n in range(7):
        await post(api, alice.headers, "tide " * (1 + n % 3) + f"number {n}")
    whole = await found_posts(api, "tide", limit=100)
    assert len(whole) == 7
    assert await walk(api, "/search/posts", "tide", 2, "id") == whole


async def test_tsquery_operators_and_sql_are_searched_as_text(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    fox = await post(api, alice.headers, "quick fox")
    hostile = ["quick & fox", "quick | nothing", "!fox", "fox:*", "qu:*", "(quick", "quick <-> fox",
               "'; DROP TABLE posts; --", "fox' OR '1'='1", "\\", "\"quick fox\""]
    for q in hostile:
        response = await api.get("/search/posts", params={"q": q})
        assert response.status_code == 200, (q, response.text)
    assert await found_posts(api, "quick & fox") == [fox]  # `&` is no operator: both words
    assert await found_posts(api, "quick | nothing") == []  # nor is `|`: "nothing" is required
    assert await found_posts(api, "!fox") == [fox]  # nor `!`: the word fox
    assert await found_posts(api, "qu:*") == []  # no prefix operator either
    assert await stores.pg.fetchval("SELECT count(*) FROM posts") == 1
    for q in hostile:
        assert (await api.get("/search/users", params={"q": q})).status_code == 200, q


async def test_a_query_of_only_punctuation_finds_nothing(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    await post(api, alice.headers, "hello... world!!!")
    for path in ("/search/posts", "/search/users"):
        response = await api.get(path, params={"q": "!!! ... ?? &|:* ()"})
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


async def test_an_overlong_or_empty_query_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    for path in ("/search/posts", "/search/users"):
        # 10,000 characters make a request head over Sanic's 8 KB limit: refused before routing.
        too_big = await api.get(path, params={"q": "x" * 10_000})
        assert too_big.status_code == 413 and too_big.json()["code"] == "headers_too_large", too_big.text
        for q in ("x" * 5_000, "x" * (MAX_QUERY_LENGTH + 1), "", "   "):
            response = await api.get(path, params={"q": q})
            assert response.status_code == 422, (path, len(q), response.status_code)
            assert response.json()["code"] == "validation_error"
        missing = await api.get(path)
        assert missing.status_code == 422 and missing.json()["code"] == "validation_error"
        assert (await api.get(path, params={"q": "x" * MAX_QUERY_LENGTH})).status_code == 200


async def test_a_tampered_search_cursor_is_a_400(api: httpx.AsyncClient, stores: Stores) -> None:
    for path in ("/search/posts", "/search/users"):
        for cursor in ("garbage", "WzFd", "WyJ4IiwxXQ", "WzEsLTFd"):  # ?, [1], ["x",1], [1,-1]
            response = await api.get(path, params={"q": "x", "cursor": cursor})
            assert response.status_code == 400, (path, cursor)
            assert response.json()["code"] == "invalid_cursor"


async def test_openapi_describes_the_search_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    for path in ("/search/users", "/search/posts"):
        params = {p["name"]: p for p in paths[path]["get"]["parameters"]}
        assert params["q"]["required"] is True and params["q"]["schema"]["maxLength"] == MAX_QUERY_LENGTH
        assert {"limit", "cursor"} <= set(params)
        assert paths[path]["get"]["tags"] == ["search"]
