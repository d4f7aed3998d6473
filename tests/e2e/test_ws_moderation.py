"""A suspension closes the suspended account's open WebSockets, on every instance, and no one else's."""

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from nubo_backend.stores import Stores
from tests.e2e.ws_support import next_frame, open_ws
from tests.factories import make_user


async def test_suspension_closes_the_suspended_accounts_open_websockets_on_every_instance(
    stores: Stores, start_server, api: httpx.AsyncClient
) -> None:
    a, b = start_server(), start_server()
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_user(stores)
    await stores.pg.execute("UPDATE users SET role = 'moderator' WHERE id = $1", moderator.id)
    bob_on_a, bob_on_b, alice_on_b = await open_ws(a, bob), await open_ws(b, bob), await open_ws(b, alice)
    filed = await api.post("/reports", json={"target_type": "user", "target_id": bob.id, "reason": "harassment"},
                           headers=alice.headers)
    assert filed.status_code == 201, filed.text

    resolved = await api.post(f"/reports/{filed.json()['id']}/resolve", json={"action": "suspend"},
                              headers=moderator.headers)
    assert resolved.status_code == 200, resolved.text

    for ws in (bob_on_a, bob_on_b):
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(20):  # bounded: skip any presence frame before the close
                await next_frame(ws, within=5)
        assert closed.value.rcvd.code == 1008
        assert "revoked" in closed.value.rcvd.reason
    await alice_on_b.send('{"type": "ping"}')  # the reporter's socket is untouched
    for _ in range(20):
        frame = await next_frame(alice_on_b)
        if frame == {"type": "pong"}:
            break
    else:
        raise AssertionError("no pong")
