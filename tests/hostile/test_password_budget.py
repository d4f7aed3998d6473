"""Issue #26, items 1 and 3: every password check draws on one budget of failures, counted
per (account, address), per session and, much higher, per account; the owner is never
locked out by someone else's failures, and the budget does not tell two names apart."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import PASSWORD, PASSWORD_HASH, TestUser, make_user
from tests.hostile.conftest import ServerLog
from tests.support import ServerProcess

WRONG = "wrong-password"


def _from(server: ServerProcess, ip: str) -> httpx.AsyncClient:
    # Another loopback address is another client address for the server.
    return httpx.AsyncClient(base_url=server.url, transport=httpx.AsyncHTTPTransport(local_address=ip), timeout=30)


async def _change(client: httpx.AsyncClient, user: TestUser, current: str) -> httpx.Response:
    body = {"current_password": current, "new_password": "a-brand-new-password"}
    return await client.post("/me/password", json=body, headers=user.headers)


async def _delete(client: httpx.AsyncClient, user: TestUser, password: str) -> httpx.Response:
    return await client.request("DELETE", "/me", json={"password": password}, headers=user.headers)


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert response.json()["error"]
    assert int(response.headers["retry-after"]) >= 1


async def _still_whole(client: httpx.AsyncClient, stores: Stores, user: TestUser) -> None:
    """Nothing changed: the same password, the account and its session alive."""
    assert await stores.pg.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id) == PASSWORD_HASH
    assert (await client.get("/me", headers=user.headers)).status_code == 200


async def test_password_change_and_deletion_share_the_login_budget(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "3"})
    log = ServerLog(server)
    carol = await make_user(stores, "carol")
    async with _from(server, "127.0.2.1") as client:
        first = [await _change(client, carol, WRONG), await _delete(client, carol, WRONG)]
        first.append(await _change(client, carol, WRONG))
        right_change = await _change(client, carol, PASSWORD)  # even the right one: the budget is spent
        right_deletion = await _delete(client, carol, PASSWORD)
        login = await client.post("/login", json={"username": "carol", "password": PASSWORD})
        await _still_whole(client, stores, carol)
    assert [(r.status_code, r.json()["code"]) for r in first] == [(403, "wrong_password")] * 3
    for response in (right_change, right_deletion, login):
        _assert_limited(response)
    log.assert_no_traceback()


async def test_a_stolen_token_moving_between_addresses_is_held_by_its_session(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "3"})
    dave = await make_user(stores, "dave")
    statuses = []
    for i in range(4):
        async with _from(server, f"127.0.2.{10 + i}") as client:
            statuses.append(await _change(client, dave, WRONG))
    assert [r.status_code for r in statuses[:3]] == [403, 403, 403]
    _assert_limited(statuses[3])
    async with _from(server, "127.0.2.20") as client:
        await _still_whole(client, stores, dave)


async def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "3"})
    await make_user(stores, "erin")
    async with _from(server, "127.0.2.30") as attacker:
        guesses = [await attacker.post("/login", json={"username": "erin", "password": WRONG}) for _ in range(4)]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]
    async with _from(server, "127.0.2.31") as owner:
        signed_in = await owner.post("/login", json={"username": "erin", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text


async def test_the_login_budget_does_not_tell_a_username_and_an_email_are_one_account(
    start_server, stores: Stores
) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "3"})
    await make_user(stores, "bob")
    async with _from(server, "127.0.2.40") as client:
        for _ in range(4):
            await client.post("/login", json={"username": "bob", "password": WRONG})
    async with _from(server, "127.0.2.41") as fresh:
        by_email = await fresh.post("/login", json={"email": "bob@example.test", "password": WRONG})
        stranger = await fresh.post("/login", json={"email": "nobody@example.test", "password": WRONG})
    assert (by_email.status_code, by_email.json()["code"]) == (401, "invalid_credentials")
    assert by_email.json() == stranger.json()


async def test_the_account_ceiling_spares_addresses_that_signed_in_before(start_server, stores: Stores) -> None:
    server = start_server({"NUBO_RATE_LIMIT_LOGIN": "2", "NUBO_RATE_LIMIT_LOGIN_ACCOUNT": "3"})
    await make_user(stores, "fay")
    async with _from(server, "127.0.2.50") as owner:
        assert (await owner.post("/login", json={"username": "fay", "password": PASSWORD})).status_code == 200
    # A spread-out attack: two addresses, two guesses each, spend the account's ceiling.
    for ip in ("127.0.2.51", "127.0.2.52"):
        async with _from(server, ip) as attacker:
            for _ in range(2):
                await attacker.post("/login", json={"username": "fay", "password": WRONG})
    async with _from(server, "127.0.2.53") as attacker:
        refused = await attacker.post("/login", json={"username": "fay", "password": PASSWORD})
    async with _from(server, "127.0.2.50") as owner:
        again = await owner.post("/login", json={"username": "fay", "password": PASSWORD})
    _assert_limited(refused)  # a new address, even with the right password: the ceiling holds
    assert again.status_code == 200, again.text
