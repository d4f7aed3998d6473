"""Passkeys as a second factor, for real: headless Chromium (Debian's) with a virtual
authenticator added through the DevTools protocol creates and uses the credential, and the real
server verifies it (py_webauthn)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.accounts.support import READY_WITHIN, signup
from tests.auth_support import PASSWORD, bearer
from tests.support import ServerProcess, free_port

TIMEOUT_MS = 15_000  # every wait on the page is bounded

# In the page: ask the options, let the authenticator answer, hand the answer to the server.
REGISTER = """async ([token, name]) => {
  const headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"};
  const options = await (await fetch("/me/2fa/passkeys/options", {method: "POST", headers})).json();
  const created = await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)});
  const kept = await fetch("/me/2fa/passkeys", {method: "POST", headers,
    body: JSON.stringify({credential: created.toJSON(), name})});
  return [kept.status, await kept.json()];
}"""
SIGN_IN = """async ([mfaToken]) => {
  const headers = {"Content-Type": "application/json"};
  const options = await (await fetch("/login/2fa/passkey/options", {method: "POST", headers,
    body: JSON.stringify({mfa_token: mfaToken})})).json();
  const asserted = await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
  const credential = asserted.toJSON();
  const done = await fetch("/login/2fa/passkey", {method: "POST", headers,
    body: JSON.stringify({mfa_token: mfaToken, credential})});
  return [done.status, await done.json(), credential];
}"""


@pytest.fixture(scope="module")
def passkey_server(test_env: dict[str, str]) -> Iterator[ServerProcess]:
    # A browser refuses an IP address as the relying party: the links' base, and so the RP,
    # is http://localhost (a secure context without TLS).
    port = free_port()
    proc = ServerProcess({**test_env, "NUBO_PUBLIC_URL": f"http://localhost:{port}"}, port=port).start(wait=False)
    try:
        proc.wait_ready(timeout=READY_WITHIN)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def api(passkey_server: ServerProcess, stores: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=passkey_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def page(passkey_server: ServerProcess, chromium: Path) -> AsyncIterator[Any]:
    """A page of the server's origin in headless Chromium, with a virtual platform authenticator
    that verifies the user and is present without a touch."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), headless=True,
                                          args=["--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = await browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            devtools = await page.context.new_cdp_session(page)
            await devtools.send("WebAuthn.enable")
            await devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
            }})
            await page.goto(f"http://localhost:{passkey_server.port}/ping")
            yield page
        finally:
            await browser.close()


async def _mfa_token(api: httpx.AsyncClient, username: str) -> str:
    login = await api.post("/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["mfa_required"] is True, login.text
    return login.json()["mfa_token"]


async def test_a_passkey_made_in_a_browser_is_the_second_factor_of_login(api: httpx.AsyncClient, page: Any) -> None:
    account = await signup(api, "keyholder")
    status, added = await page.evaluate(REGISTER, [account["access_token"], "Laptop"])
    assert status == 201, added
    assert added["name"] == "Laptop" and added["last_used_at"] is None
    me = await api.get("/me", headers=bearer(account["access_token"]))
    assert me.json()["two_factor"] is True

    mfa_token = await _mfa_token(api, "keyholder")  # the password alone no longer signs in
    status, signed_in, _ = await page.evaluate(SIGN_IN, [mfa_token])
    assert status == 200, signed_in
    assert (await api.get("/me", headers=bearer(signed_in["access_token"]))).json()["username"] == "keyholder"
    [listed] = (await api.get("/me/2fa/passkeys", headers=bearer(signed_in["access_token"]))).json()["items"]
    assert listed["id"] == added["id"] and listed["last_used_at"] is not None

    spent = await api.post("/login/2fa/passkey/options", json={"mfa_token": mfa_token})
    assert spent.status_code == 401 and spent.json()["code"] == "invalid_mfa_token"


async def test_a_passkey_answer_cannot_be_replayed_and_a_code_does_not_stand_in_for_it(
    api: httpx.AsyncClient, page: Any
) -> None:
    account = await signup(api, "replayer")
    status, _ = await page.evaluate(REGISTER, [account["access_token"], "Phone"])
    assert status == 201
    status, _, answered = await page.evaluate(SIGN_IN, [await _mfa_token(api, "replayer")])
    assert status == 200

    # The same signed answer, for a new login whose options carry a new challenge.
    mfa_token = await _mfa_token(api, "replayer")
    assert (await api.post("/login/2fa/passkey/options", json={"mfa_token": mfa_token})).status_code == 200
    replayed = await api.post("/login/2fa/passkey", json={"mfa_token": mfa_token, "credential": answered})
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_passkey"
    without_options = await api.post("/login/2fa/passkey", json={"mfa_token": mfa_token, "credential": answered})
    assert without_options.status_code == 409  # the options' challenge is single use
    garbage = await api.post("/login/2fa/passkey/options", json={"mfa_token": mfa_token})
    assert garbage.status_code == 200
    refused = await api.post("/login/2fa/passkey", json={"mfa_token": mfa_token, "credential": {"id": "x"}})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_passkey"
    code = await api.post("/login/2fa", json={"mfa_token": mfa_token, "code": "123456"})
    assert code.status_code == 401 and code.json()["code"] == "invalid_code"  # no TOTP on this account


async def test_removing_the_passkey_needs_the_password_and_login_is_one_step_again(
    api: httpx.AsyncClient, page: Any
) -> None:
    account = await signup(api, "unkeyed")
    status, added = await page.evaluate(REGISTER, [account["access_token"], "Old key"])
    assert status == 201
    path, headers = f"/me/2fa/passkeys/{added['id']}", bearer(account["access_token"])
    wrong = await api.request("DELETE", path, json={"password": "not-the-password"}, headers=headers)
    assert wrong.status_code == 403
    removed = await api.request("DELETE", path, json={"password": PASSWORD}, headers=headers)
    assert removed.status_code == 204
    login = await api.post("/login", json={"username": "unkeyed", "password": PASSWORD})
    assert login.status_code == 200 and "access_token" in login.json()
    again = await api.request("DELETE", path, json={"password": PASSWORD}, headers=headers)
    assert again.status_code == 404 and again.json()["code"] == "passkey_not_found"
