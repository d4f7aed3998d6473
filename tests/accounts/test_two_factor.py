"""Two-factor sign-in with TOTP and recovery codes, through the real server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
import pytest

from nubo_backend.client import Nubo, SecondFactorRequired
from tests.accounts.support import me, signup
from tests.auth_support import PASSWORD, bearer
from tests.support import ServerProcess


async def _enrol(api: httpx.AsyncClient, account: dict[str, Any]) -> tuple[pyotp.TOTP, list[str]]:
    headers = bearer(account["access_token"])
    started = await api.post("/me/2fa/totp", headers=headers)
    assert started.status_code == 200, started.text
    enrolment = started.json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/Nubo:")
    totp = pyotp.parse_uri(enrolment["otpauth_uri"])
    assert totp.secret == enrolment["secret"]

    wrong = await api.post("/me/2fa/totp/confirm", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 401
    assert (await me(api, account["access_token"]))["two_factor"] is False
    confirmed = await api.post("/me/2fa/totp/confirm", json={"code": totp.now()}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


def _next_code(totp: pyotp.TOTP) -> str:
    # The code of the next time step (accepted: one step of drift), since the current one was
    # just used to confirm.
    return totp.at(time.time() + totp.interval)


async def _password_step(api: httpx.AsyncClient, username: str) -> str:
    answer = await api.post("/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mfa_required"] is True and "access_token" not in body
    return body["mfa_token"]


async def test_login_with_totp_on_asks_for_a_code_and_the_code_finishes_it(mail_api: httpx.AsyncClient) -> None:
    account = await signup(mail_api, "guarded")
    totp, _ = await _enrol(mail_api, account)
    assert (await me(mail_api, account["access_token"]))["two_factor"] is True

    mfa_token = await _password_step(mail_api, "guarded")
    wrong = await mail_api.post("/login/2fa", json={"mfa_token": mfa_token, "code": "123456"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_code"
    signed_in = await mail_api.post("/login/2fa", json={"mfa_token": mfa_token, "code": _next_code(totp)})
    assert signed_in.status_code == 200, signed_in.text
    assert (await me(mail_api, signed_in.json()["access_token"]))["username"] == "guarded"

    spent = await mail_api.post("/login/2fa", json={"mfa_token": mfa_token, "code": totp.now()})
    assert spent.status_code == 401 and spent.json()["code"] == "invalid_mfa_token"


async def test_a_totp_code_cannot_be_replayed_in_its_window(mail_api: httpx.AsyncClient) -> None:
    account = await signup(mail_api, "replayed")
    totp, _ = await _enrol(mail_api, account)
    code = _next_code(totp)
    first = await mail_api.post("/login/2fa", json={"mfa_token": await _password_step(mail_api, "replayed"),
                                                     "code": code})
    assert first.status_code == 200
    replay = await mail_api.post("/login/2fa", json={"mfa_token": await _password_step(mail_api, "replayed"),
                                                      "code": code})
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_code"
    older = await mail_api.post("/login/2fa", json={"mfa_token": await _password_step(mail_api, "replayed"),
                                                     "code": totp.now()})
    assert older.status_code == 401  # a step older than one already used


async def test_a_recovery_code_signs_in_once(mail_api: httpx.AsyncClient, mail_server: ServerProcess) -> None:
    account = await signup(mail_api, "lostphone")
    _, codes = await _enrol(mail_api, account)
    typed = codes[3].upper().replace("-", " ")  # typed loosely
    used = await mail_api.post("/login/2fa", json={"mfa_token": await _password_step(mail_api, "lostphone"),
                                                    "code": typed})
    assert used.status_code == 200, used.text
    again = await mail_api.post("/login/2fa", json={"mfa_token": await _password_step(mail_api, "lostphone"),
                                                     "code": codes[3]})
    assert again.status_code == 401
    output = mail_server.output()
    assert all(code not in output for code in codes)


async def test_second_factor_codes_are_rate_limited(mail_api: httpx.AsyncClient) -> None:
    account = await signup(mail_api, "bruteforced")
    totp, _ = await _enrol(mail_api, account)
    mfa_token = await _password_step(mail_api, "bruteforced")
    statuses = [
        (await mail_api.post("/login/2fa", json={"mfa_token": mfa_token, "code": f"{n:06d}"})).status_code
        for n in range(6)
    ]
    assert statuses[-1] == 429, statuses  # 5 per minute per account (the confirming code counted)
    limited = await mail_api.post("/login/2fa", json={"mfa_token": mfa_token, "code": _next_code(totp)})
    assert limited.status_code == 429 and "retry-after" in limited.headers


async def test_turning_totp_off_needs_the_password_and_a_code(mail_api: httpx.AsyncClient) -> None:
    account = await signup(mail_api, "relaxed")
    totp, _ = await _enrol(mail_api, account)
    headers = bearer(account["access_token"])
    no_code = await mail_api.request("DELETE", "/me/2fa/totp", json={"password": PASSWORD, "code": "000000"},
                                     headers=headers)
    assert no_code.status_code == 401
    no_password = await mail_api.request("DELETE", "/me/2fa/totp",
                                         json={"password": "wrong-one", "code": _next_code(totp)}, headers=headers)
    assert no_password.status_code == 403
    off = await mail_api.request("DELETE", "/me/2fa/totp", json={"password": PASSWORD, "code": _next_code(totp)},
                                 headers=headers)
    assert off.status_code == 204, off.text
    plain = await mail_api.post("/login", json={"username": "relaxed", "password": PASSWORD})
    assert plain.status_code == 200 and "access_token" in plain.json()


async def test_the_typed_client_signs_in_with_a_second_factor(mail_api: httpx.AsyncClient,
                                                               mail_server: ServerProcess) -> None:
    async with await Nubo.signup(mail_server.url, "typed", "typed@example.test", PASSWORD) as client:
        enrolment = await client.start_totp()
        totp = pyotp.TOTP(enrolment["secret"])
        codes = await client.confirm_totp(totp.now())
        assert len(codes) == 10 and (await client.me()).two_factor is True
    with pytest.raises(SecondFactorRequired) as needed:
        await Nubo.login(mail_server.url, "typed", PASSWORD)
    assert needed.value.expires_in > 0
    async with await Nubo.login(mail_server.url, "typed", PASSWORD, code=codes[0]) as client:
        assert (await client.me()).username == "typed"
