"""The seed's scenario: a plain text line reaches every client on every instance, sender included."""

import asyncio

from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user


async def test_plain_text_reaches_every_client_on_every_instance_sender_included(
    stores: Stores, start_server
) -> None:
    a, b = start_server(), start_server()
    user = await make_user(stores)
    other = await make_user(stores)
    first, second = await open_ws(a, user), await open_ws(a, user)
    remote = await open_ws(b, other)
    await first.send("Salut à tous !")
    received = await asyncio.gather(*(next_frame(ws) for ws in (first, second, remote)))
    assert received == ["Salut à tous !"] * 3
    for ws in (first, second, remote):
        await ws.close()


async def test_json_without_a_type_is_broadcast_as_plain_text(stores: Stores, start_server) -> None:
    server = start_server()
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"hello": "world"}')
    assert await next_frame(ws) == {"hello": "world"}
    await ws.close()


async def test_broadcast_lines_are_kept_and_listed_newest_first(stores: Stores, start_server) -> None:
    import httpx

    server = start_server()
    user = await make_user(stores)
    ws = await open_ws(server, user)
    for n in range(3):
        await ws.send(f"line {n}")
        assert await next_frame(ws) == f"line {n}"
    await ws.close()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/broadcast")).status_code == 401
        page = (await http.get("/broadcast?limit=2", headers=user.headers)).json()
        assert [i["text"] for i in page["items"]] == ["line 2", "line 1"]
        assert page["items"][0]["user_id"] == user.id
        rest = (await http.get(f"/broadcast?limit=2&cursor={page['next_cursor']}", headers=user.headers)).json()
        assert [i["text"] for i in rest["items"]] == ["line 0"] and rest["next_cursor"] is None
