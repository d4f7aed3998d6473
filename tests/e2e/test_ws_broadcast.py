"""The seed's scenario: a plain text line reaches every client on every instance, sender included."""

import asyncio

import httpx

from nubo_backend.client import Broadcast
from nubo_backend.stores import Stores
from tests.client.support import connected, next_of
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user


async def test_plain_text_reaches_every_client_on_every_instance_sender_included(
    stores: Stores, start_server, login
) -> None:
    a, b = start_server(), start_server()
    user, other = await make_user(stores), await make_user(stores)
    first, second, remote = await login(a, user), await login(a, user), await login(b, other)
    await connected(first, second, remote)
    await first.broadcast("Salut à tous !")
    received = await asyncio.gather(*(next_of(client, Broadcast) for client in (first, second, remote)))
    assert [line.text for line in received] == ["Salut à tous !"] * 3


async def test_json_without_a_type_is_broadcast_as_plain_text(stores: Stores, start_server) -> None:
    server = start_server()
    user = await make_user(stores)
    ws = await open_ws(server, user)
    await ws.send('{"hello": "world"}')
    assert await next_frame(ws) == {"hello": "world"}
    await ws.close()


async def test_broadcast_lines_are_kept_and_listed_newest_first(stores: Stores, start_server, login) -> None:
    server = start_server()
    user = await make_user(stores)
    client = await login(server, user)
    for n in range(3):
        await client.broadcast(f"line {n}")
        assert (await next_of(client, Broadcast)).text == f"line {n}"
    page = await client.broadcasts(limit=2)
    assert [i["text"] for i in page.items] == ["line 2", "line 1"] and page.items[0]["user_id"] == user.id
    rest = await client.broadcasts(limit=2, cursor=page.next_cursor)
    assert [i["text"] for i in rest.items] == ["line 0"] and rest.next_cursor is None
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/broadcast")).status_code == 401
