"""Password reset by mail, through the real server and a real SMTP server."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nubo_backend.stores import Stores
from tests.accounts.mail_support import MailCatcher
from tests.accounts.support import PUBLIC_URL, running_server, signup
from tests.auth_support import PASSWORD, bearer
from tests.polling import eventually
from tests.support import ServerProcess

NEW_PASSWORD = "a-brand-new-passphrase"


async def _reset_token(api: httpx.AsyncClient, catcher: MailCatcher, email: str, count: int = 1) -> str:
    asked = await api.post("/password/forgot", json={"email": email})
    assert asked.status_code == 202, asked.text
    mails = [m for m in await catcher.wait_for(email, count=count + 1) if "password" in m.subject]
    return mails[-1].link_token("/password/reset")


async def test_password_reset_sets_the_password_revokes_every_session_and_closes_sockets(
    mail_api: httpx.AsyncClient, mail_server: ServerProcess, catcher: MailCatcher
) -> None:
    account = await signup(mail_api, "forgetful")
    other = (await mail_api.post("/login", json={"username": "forgetful", "password": PASSWORD})).json()
    ws = await connect(mail_server.ws_url, additional_headers=bearer(account["access_token"]), open_timeout=5)

    token = await _reset_token(mail_api, catcher, "forgetful@example.test")
    [mail] = [m for m in catcher.to("forgetful@example.test") if m.subject == "Reset your password"]
    assert f"{PUBLIC_URL}/password/reset?token={token}" in mail.text and "30 minutes" in mail.text

    page = await mail_api.get("/password/reset", params={"token": token})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["referrer-policy"] == "no-referrer"

    reset = await mail_api.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    assert reset.json() == {"revoked_sessions": 2}

    for session in (account, other):
        assert (await mail_api.get("/me", headers=bearer(session["access_token"]))).status_code == 401
        refreshed = await mail_api.post("/refresh", json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 401
    try:
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    except ConnectionClosed:
        pass
    assert ws.close_code is not None

    old = await mail_api.post("/login", json={"username": "forgetful", "password": PASSWORD})
    assert old.status_code == 401
    new = await mail_api.post("/login", json={"username": "forgetful", "password": NEW_PASSWORD})
    assert new.status_code == 200

    again = await mail_api.post("/password/reset", json={"token": token, "password": "yet-another-one"})
    assert again.status_code == 401 and again.json()["code"] == "invalid_link"
    notices = await catcher.wait_for("forgetful@example.test", count=3)
    assert notices[-1].subject == "Your password was changed"
    assert token not in mail_server.output() and NEW_PASSWORD not in mail_server.output()


async def test_superseded_and_expired_reset_links_are_refused(
    mail_api: httpx.AsyncClient, catcher: MailCatcher, stores: Stores
) -> None:
    await signup(mail_api, "twice")
    first = await _reset_token(mail_api, catcher, "twice@example.test")
    second = await _reset_token(mail_api, catcher, "twice@example.test", count=2)
    superseded = await mail_api.post("/password/reset", json={"token": first, "password": NEW_PASSWORD})
    assert superseded.status_code == 401

    await stores.pg.execute("UPDATE account_tokens SET expires_at = now() - interval '1 second'")
    expired = await mail_api.post("/password/reset", json={"token": second, "password": NEW_PASSWORD})
    assert expired.status_code == 401
    still = await mail_api.post("/login", json={"username": "twice", "password": PASSWORD})
    assert still.status_code == 200


async def test_only_a_hash_of_the_reset_token_is_stored(
    mail_api: httpx.AsyncClient, catcher: MailCatcher, stores: Stores
) -> None:
    await signup(mail_api, "hashed")
    token = await _reset_token(mail_api, catcher, "hashed@example.test")
    rows = await stores.pg.fetch("SELECT token_hash, email FROM account_tokens WHERE purpose = 'reset_password'")
    assert len(rows) == 1 and token.encode() not in bytes(rows[0]["token_hash"])
    sent = await eventually(lambda: stores.pg.fetchval("SELECT count(*) FROM mail_queue"), 0)
    assert sent == 0  # deleted once delivered (it held the link)


async def test_forgot_password_answers_the_same_status_body_and_time_for_known_and_unknown_addresses(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    await signup(mail_api, "known")
    durations: dict[str, list[float]] = {"known@example.test": [], "nobody@example.test": []}
    answers = set()
    for _ in range(50):
        for email, times in durations.items():  # interleaved: both see the same machine load
            started = time.perf_counter()
            response = await mail_api.post("/password/forgot", json={"email": email})
            times.append(time.perf_counter() - started)
            answers.add((response.status_code, response.text))
    assert len(answers) == 1 and next(iter(answers))[0] == 202
    known, unknown = durations.values()
    gap = abs(statistics.median(known) - statistics.median(unknown))
    noise = max(statistics.quantiles(t, n=4)[2] - statistics.quantiles(t, n=4)[0] for t in (known, unknown))
    assert gap <= noise + 0.002, (gap, noise)
    await catcher.wait_for("known@example.test", count=2)  # the reset links went out all the same


async def test_mails_asked_are_limited_per_email_and_per_account_with_retry_after(
    test_env: dict[str, str], stores: Stores
) -> None:
    with running_server({**test_env, "NUBO_RATE_LIMIT_MAIL": "2"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            for _ in range(2):
                assert (await api.post("/password/forgot", json={"email": "x@example.test"})).status_code == 202
            limited = await api.post("/password/forgot", json={"email": "X@example.test"})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
            assert limited.json()["code"] == "rate_limited", limited.text
            other = await api.post("/password/forgot", json={"email": "y@example.test"})
            assert other.status_code == 202

            account = await signup(api, "resender")
            resends = [(await api.post("/email/verification", headers=bearer(account["access_token"])))
                       for _ in range(3)]
            assert [r.status_code for r in resends] == [202, 202, 429]
            assert int(resends[-1].headers["retry-after"]) > 0


async def test_forgot_password_is_limited_per_client_address(test_env: dict[str, str], stores: Stores) -> None:
    # Another address each time: one client cannot sweep a list of addresses either.
    with running_server({**test_env, "NUBO_RATE_LIMIT_MAIL_IP": "3"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            statuses = [(await api.post("/password/forgot", json={"email": f"sweep{i}@example.test"})).status_code
                        for i in range(4)]
            assert statuses == [202, 202, 202, 429]
