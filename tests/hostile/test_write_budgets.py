"""Issue #26, item 9: every write, and the expensive reads, spend from a per-account budget."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited" and response.json()["error"]
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_posts_over_the_budget_are_refused_and_not_written(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_WRITE_BUDGETS": "post=2/60"})
    alice, bob = await make_user(stores), await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        made = [await api.post("/posts", json={"body": f"p{n}"}, headers=alice.headers) for n in range(2)]
        over = await api.post("/posts", json={"body": "spam"}, headers=alice.headers)
        edit = await api.patch(f"/posts/{made[0].json()['id']}", json={"body": "e"}, headers=alice.headers)
        other = await api.post("/posts", json={"body": "mine"}, headers=bob.headers)
    assert [r.status_code for r in made] == [201, 201]
    _assert_limited(over)
    _assert_limited(edit)  # editing draws on the same budget
    assert other.status_code == 201  # per account: another one is not held
    bodies = await stores.pg.fetch("SELECT body FROM posts ORDER BY id")
    assert [b["body"] for b in bodies] == ["p0", "p1", "mine"]


async def test_each_write_route_and_search_has_a_budget(start_server, stores: Stores) -> None:
    names = ("comment", "like", "message", "follow", "conversation", "search")
    server = start_server({"NUBO_WRITE_BUDGETS": ",".join(f"{n}=1/60" for n in names)})
    log = ServerLog(server)
    alice, bob = await make_user(stores), await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=alice.headers) as api:
        post = (await api.post("/posts", json={"body": "x"})).json()["id"]
        group = (await api.post("/conversations", json={"title": "g", "member_ids": [bob.id]})).json()["id"]
        calls = [
            ("comment", "POST", f"/posts/{post}/comments", {"body": "c"}),
            ("like", "PUT", f"/posts/{post}/like", None),
            ("message", "POST", f"/conversations/{group}/messages", {"body": "m"}),
            ("follow", "POST", f"/users/{bob.id}/follow", None),
            ("conversation", "POST", f"/conversations/{group}/members", {"user_ids": [bob.id]}),
            ("search", "GET", "/search/posts?q=x", None),
        ]
        for name, method, path, body in calls:
            if name != "conversation":  # (creating the group spent it)
                first = await api.request(method, path, json=body)
                assert first.status_code < 300, (name, first.text)
            _assert_limited(await api.request(method, path, json=body))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as signed_out:  # per address
        anonymous = [await signed_out.get("/search/users?q=a") for _ in range(2)]
    assert await stores.pg.fetchval("SELECT count(*) FROM comments") == 1
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 1
    assert anonymous[0].status_code == 200
    _assert_limited(anonymous[1])
    log.assert_no_traceback()
