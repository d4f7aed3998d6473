"""E-mail verification and e-mail change, through the real server and a real SMTP server."""

from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import httpx
import pytest

from nubo_backend.settings import Settings
from tests.accounts.mail_support import MailCatcher
from tests.accounts.support import PUBLIC_URL, mail_env, me, running_server, signup
from tests.auth_support import PASSWORD, bearer
from tests.polling import eventually
from tests.support import ServerProcess


@pytest.fixture(scope="module")
def server_settings() -> dict[str, str]:
    return {"NUBO_EMAIL_VERIFICATION": "required"}


async def test_signup_mails_a_verification_link_that_verifies_the_address_once(
    mail_api: httpx.AsyncClient, catcher: MailCatcher, mail_server: ServerProcess
) -> None:
    account = await signup(mail_api, "verona")
    assert (await me(mail_api, account["access_token"]))["email_verified"] is False

    [mail] = await catcher.wait_for("verona@example.test")
    assert mail.subject == "Confirm your e-mail address"
    assert mail.message["From"] == "Nubo <no-reply@nubo.example.test>"
    assert f"{PUBLIC_URL}/email/verify?token=" in mail.text and f"{PUBLIC_URL}/email/verify?token=" in mail.html
    token = mail.link_token("/email/verify")

    verified = await mail_api.post("/email/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"email": "verona@example.test", "email_verified": True}
    assert (await me(mail_api, account["access_token"]))["email_verified"] is True

    again = await mail_api.post("/email/verify", json={"token": token})
    assert again.status_code == 401 and again.json()["code"] == "invalid_link"
    assert token not in mail_server.output()


async def test_with_verification_required_an_unverified_account_may_read_but_not_post_or_message(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    account, friend = await signup(mail_api, "unproven"), await signup(mail_api, "friend")
    headers = bearer(account["access_token"])
    assert (await mail_api.get("/feed", headers=headers)).status_code == 200
    refused = await mail_api.post("/posts", json={"body": "hello"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "email_not_verified"
    direct = await mail_api.post("/conversations", json={"user_id": friend["user"]["id"]}, headers=headers)
    assert direct.status_code in (200, 201), direct.text
    message = await mail_api.post(f"/conversations/{direct.json()['id']}/messages", json={"body": "hi"},
                                  headers=headers)
    assert message.status_code == 403 and message.json()["code"] == "email_not_verified"

    [mail] = await catcher.wait_for("unproven@example.test")
    assert (await mail_api.post("/email/verify", json={"token": mail.link_token("/email/verify")})).status_code == 200
    posted = await mail_api.post("/posts", json={"body": "hello"}, headers=headers)
    assert posted.status_code == 201, posted.text


async def test_account_mails_are_in_the_language_of_the_account(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    await signup(mail_api, "amelie", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    await signup(mail_api, "arthur", language="en", headers={"Accept-Language": "fr"})
    [french] = await catcher.wait_for("amelie@example.test")
    [english] = await catcher.wait_for("arthur@example.test")
    assert french.subject == "Confirmez votre adresse e-mail"
    assert "Bonjour amelie" in french.text and '<html lang="fr">' in french.html
    assert english.subject == "Confirm your e-mail address"

    arthur = (await mail_api.post("/login", json={"username": "arthur", "password": PASSWORD})).json()
    changed = await mail_api.patch("/me", json={"language": "fr"}, headers=bearer(arthur["access_token"]))
    assert changed.status_code == 200 and changed.json()["language"] == "fr"
    assert (await mail_api.post("/email/verification", headers=bearer(arthur["access_token"]))).status_code == 202
    _, now_french = await catcher.wait_for("arthur@example.test", count=2)
    assert now_french.subject == "Confirmez votre adresse e-mail"


async def test_a_new_verification_link_supersedes_the_previous_one(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    account = await signup(mail_api, "vivian")
    [first] = await catcher.wait_for("vivian@example.test")
    resent = await mail_api.post("/email/verification", headers=bearer(account["access_token"]))
    assert resent.status_code == 202, resent.text
    _, second = await catcher.wait_for("vivian@example.test", count=2)

    old = await mail_api.post("/email/verify", json={"token": first.link_token("/email/verify")})
    assert old.status_code == 401
    new = await mail_api.post("/email/verify", json={"token": second.link_token("/email/verify")})
    assert new.status_code == 200
    done = await mail_api.post("/email/verification", headers=bearer(account["access_token"]))
    assert done.status_code == 409 and done.json()["code"] == "email_already_verified"


async def test_email_change_mails_both_addresses_and_takes_effect_on_confirmation_only(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    account = await signup(mail_api, "edmond")
    headers = bearer(account["access_token"])
    wrong = await mail_api.post("/me/email", json={"email": "ed@new.example.test", "password": "not-it"},
                                headers=headers)
    assert wrong.status_code == 403

    asked = await mail_api.post("/me/email", json={"email": "Ed@New.example.test", "password": PASSWORD},
                                headers=headers)
    assert asked.status_code == 202, asked.text
    [confirmation] = await catcher.wait_for("ed@new.example.test")
    _, notice = await catcher.wait_for("edmond@example.test", count=2)  # the signup's, then the notice
    assert confirmation.subject == "Confirm your new e-mail address"
    assert notice.subject == "Your e-mail address is about to change" and "ed@new.example.test" in notice.text
    assert "token=" not in notice.text  # the old address cannot confirm the change
    assert (await me(mail_api, account["access_token"]))["email"] == "edmond@example.test"

    confirmed = await mail_api.post("/email/verify", json={"token": confirmation.link_token("/email/verify")})
    assert confirmed.status_code == 200, confirmed.text
    account_now = await me(mail_api, account["access_token"])
    assert account_now["email"] == "ed@new.example.test" and account_now["email_verified"] is True
    login = await mail_api.post("/login", json={"email": "ed@new.example.test", "password": PASSWORD})
    assert login.status_code == 200


async def test_two_accounts_racing_for_one_address_leave_it_to_the_first_confirmed(
    mail_api: httpx.AsyncClient, catcher: MailCatcher
) -> None:
    first, second = await signup(mail_api, "racer_one"), await signup(mail_api, "racer_two")
    for account in (first, second):
        asked = await mail_api.post("/me/email", json={"email": "prize@example.test", "password": PASSWORD},
                                    headers=bearer(account["access_token"]))
        assert asked.status_code == 202, asked.text
    mails = await catcher.wait_for("prize@example.test", count=2)
    outcomes = await asyncio.gather(*(
        mail_api.post("/email/verify", json={"token": m.link_token("/email/verify")}) for m in mails
    ))
    assert sorted(r.status_code for r in outcomes) == [200, 409]
    owners = [(await me(mail_api, a["access_token"]))["email"] for a in (first, second)]
    assert owners.count("prize@example.test") == 1


@pytest.mark.parametrize("outage", ["refusing", "hanging"])
async def test_signup_succeeds_at_once_while_the_mail_server_is_down_and_the_mail_arrives_once_it_is_back(
    outage: str, test_env: dict[str, str], own_database: Settings
) -> None:
    # refusing: nothing listens on the mail server's port (each attempt fails at once, and is
    # retried with backoff). hanging: the port takes connections and never answers, so a mail
    # sent from the request would hold signup for the whole SMTP timeout.
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    catcher = MailCatcher(port=listener.getsockname()[1])
    if outage == "refusing":
        listener.close()
    # A database of its own: the module's server would deliver the queue's mails otherwise.
    env = {**test_env, **mail_env(catcher), "NUBO_MAIL_TIMEOUT": "3",
           "NUBO_POSTGRES_DSN": own_database.postgres_dsn, "NUBO_MONGO_DB": own_database.mongo_db}
    queue = await asyncpg.connect(own_database.postgres_dsn)
    try:
        with running_server(env) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
                started = time.monotonic()
                await signup(api, "patient")
                assert time.monotonic() - started < 3.0  # less than one delivery attempt
                assert await queue.fetchval("SELECT count(*) FROM mail_queue") == 1
                if outage == "refusing":  # tried and refused before the server is back
                    failed = "SELECT count(*) FROM mail_queue WHERE last_error IS NOT NULL"
                    assert await eventually(lambda: queue.fetchval(failed), 1) == 1
                listener.close()
                catcher.start()  # the mail server is back, on the same port
                [mail] = await catcher.wait_for("patient@example.test", within=20)
                assert mail.subject == "Confirm your e-mail address"
                assert await eventually(lambda: queue.fetchval("SELECT count(*) FROM mail_queue"), 0) == 0  # sent: gone
                await asyncio.sleep(0.5)
                assert len(catcher.to("patient@example.test")) == 1  # delivered once
    finally:
        listener.close()
        await queue.close()
        catcher.stop()
