import asyncio
import time

import httpx
import pytest

from nubo_backend.auth.tokens import CLOCK_LEEWAY, InvalidToken, TokenVerifier, mint_access_token
from nubo_backend.stores import Stores
from tests.auth_support import bearer, forge_jwt, login, signup
from tests.factories import make_user

INVALID = {"error": "Token invalide", "code": "invalid_token"}


async def test_refresh_returns_a_new_pair_and_the_old_refresh_token_stops_working(
    api: httpx.AsyncClient,
) -> None:
    first = await signup(api)
    response = await api.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert (await api.get("/me", headers=bearer(second["access_token"]))).status_code == 200
    third = await api.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_rotated_refresh_token_reuse_revokes_session(api: httpx.AsyncClient) -> None:
    first = await signup(api)
    second = (await api.post("/refresh", json={"refresh_token": first["refresh_token"]})).json()
    replay = await api.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # The whole session is gone: the legitimate latest tokens die with it.
    assert (await api.get("/me", headers=bearer(second["access_token"]))).json() == INVALID
    latest = await api.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert latest.status_code == 401
    assert latest.json()["code"] == "invalid_refresh_token"


async def test_wrong_secret_for_a_live_session_is_refused_without_revoking_it(api: httpx.AsyncClient) -> None:
    pair = await signup(api)
    session_id = pair["refresh_token"].partition(".")[0]
    guessed = await api.post("/refresh", json={"refresh_token": f"{session_id}.not-the-secret"})
    assert guessed.status_code == 401
    assert guessed.json()["code"] == "invalid_refresh_token"
    assert (await api.get("/me", headers=bearer(pair["access_token"]))).status_code == 200
    assert (await api.post("/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "nosuchsession.secret", ".", "a" * 200])
async def test_unknown_or_malformed_refresh_token_is_401_invalid_refresh_token(
    api: httpx.AsyncClient, token: str
) -> None:
    response = await api.post("/refresh", json={"refresh_token": token})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_concurrent_refreshes_with_one_token_rotate_exactly_once(api: httpx.AsyncClient) -> None:
    pair = await signup(api)
    responses = await asyncio.gather(
        *(api.post("/refresh", json={"refresh_token": pair["refresh_token"]}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses).count(200) == 1


async def test_refresh_records_last_used(api: httpx.AsyncClient, stores: Stores) -> None:
    pair = await signup(api)
    session_id = pair["refresh_token"].partition(".")[0]
    await stores.redis.hset(stores.keys("sess", session_id), "last_used", 1000)
    await api.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    last_used = int(await stores.redis.hget(stores.keys("sess", session_id), "last_used"))
    assert abs(last_used - time.time()) < 5


async def test_logout_revokes_access_token_immediately(api: httpx.AsyncClient) -> None:
    pair = await signup(api)
    headers = bearer(pair["access_token"])
    assert (await api.post("/logout", headers=headers)).status_code == 204
    after = await api.get("/me", headers=headers)
    assert after.status_code == 401
    assert after.json() == INVALID
    refreshed = await api.post("/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


async def test_logout_all_revokes_every_session_of_the_user_only(api: httpx.AsyncClient, stores: Stores) -> None:
    await signup(api, "lena")
    phone = await login(api, "lena")
    other_user = await make_user(stores)
    assert (await api.post("/logout/all", headers=bearer(phone["access_token"]))).status_code == 204
    assert (await api.get("/me", headers=bearer(phone["access_token"]))).status_code == 401
    assert (await api.post("/refresh", json={"refresh_token": phone["refresh_token"]})).status_code == 401
    assert (await api.get("/me", headers=other_user.headers)).status_code == 200


async def test_sessions_lists_devices_and_marks_the_current_one(api: httpx.AsyncClient) -> None:
    await signup(api, "mike")
    await login(api, "mike", **{"User-Agent": "phone-app/1.0"})
    laptop = await login(api, "mike", **{"User-Agent": "laptop-browser"})
    response = await api.get("/sessions", headers=bearer(laptop["access_token"]))
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 3
    assert {"id", "user_agent", "ip", "created_at", "last_used_at", "current"} == set(items[0])
    current = [s for s in items if s["current"]]
    assert len(current) == 1
    assert current[0]["user_agent"] == "laptop-browser"
    assert current[0]["id"] == laptop["refresh_token"].partition(".")[0]
    assert current[0]["ip"] == "127.0.0.1"
    assert "phone-app/1.0" in {s["user_agent"] for s in items}


async def test_delete_session_revokes_that_device(api: httpx.AsyncClient) -> None:
    await signup(api, "nina")
    phone = await login(api, "nina")
    laptop = await login(api, "nina")
    phone_sid = phone["refresh_token"].partition(".")[0]
    response = await api.delete(f"/sessions/{phone_sid}", headers=bearer(laptop["access_token"]))
    assert response.status_code == 204
    assert (await api.get("/me", headers=bearer(phone["access_token"]))).json() == INVALID
    remaining = (await api.get("/sessions", headers=bearer(laptop["access_token"]))).json()["items"]
    assert phone_sid not in {s["id"] for s in remaining}


async def test_delete_session_of_another_user_is_404_and_leaves_it_alive(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    owner = await make_user(stores)
    intruder = await make_user(stores)
    response = await api.delete(f"/sessions/{owner.session_id}", headers=intruder.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
    assert (await api.get("/me", headers=owner.headers)).status_code == 200
    missing = await api.delete("/sessions/does-not-exist", headers=intruder.headers)
    assert missing.status_code == 404


# --- access tokens the guard must refuse -------------------------------------------------


def _claims(user_id: int, session_id: str, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"sub": str(user_id), "sid": session_id, "iat": now, "exp": now + 600, "jti": "x"}
    claims.update(changes)
    return claims


async def _refused(api: httpx.AsyncClient, token: str) -> None:
    response = await api.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_expired_access_token_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    token, _ = mint_access_token(stores.settings.jwt_secret, user.id, user.session_id, 60, now=time.time() - 3600)
    await _refused(api, token)


async def test_tampered_access_token_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    victim = await make_user(stores)
    header, _, signature = user.token.split(".")
    # The attacker's signature on a payload naming someone else.
    payload = forge_jwt({}, _claims(victim.id, victim.session_id), None).split(".")[1]
    await _refused(api, f"{header}.{payload}.{signature}")
    await _refused(api, user.token[:-2] + ("AA" if not user.token.endswith("AA") else "BB"))


async def test_alg_none_token_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    for alg in ("none", "None", "NONE"):
        await _refused(api, forge_jwt({"alg": alg, "typ": "JWT"}, _claims(user.id, user.session_id), None))


async def test_token_signed_with_another_secret_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    token, _ = mint_access_token("another-secret-of-sufficient-length-42", user.id, user.session_id, 600)
    await _refused(api, token)


async def test_rs256_and_other_algorithm_headers_are_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    """RS/HS confusion: a token claiming RS256 (or HS512) but HMAC-signed with our secret is refused."""
    user = await make_user(stores)
    secret = stores.settings.jwt_secret.encode()
    for alg in ("RS256", "HS512", "ES256", "PS256"):
        await _refused(api, forge_jwt({"alg": alg, "typ": "JWT"}, _claims(user.id, user.session_id), secret))
    # The same hand-made token with alg HS256 is accepted: the refusals above are about the algorithm.
    genuine = forge_jwt({"alg": "HS256", "typ": "JWT"}, _claims(user.id, user.session_id), secret)
    assert (await api.get("/me", headers=bearer(genuine))).status_code == 200


async def test_token_missing_a_required_claim_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    secret = stores.settings.jwt_secret.encode()
    claims = _claims(user.id, user.session_id)
    del claims["sid"]
    await _refused(api, forge_jwt({"alg": "HS256", "typ": "JWT"}, claims, secret))


async def test_token_for_another_users_session_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    other = await make_user(stores)
    token, _ = mint_access_token(stores.settings.jwt_secret, user.id, other.session_id, 600)
    await _refused(api, token)


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer not-a-jwt", "Token x.y.z"])
async def test_malformed_authorization_header_is_invalid_token(api: httpx.AsyncClient, header: str) -> None:
    response = await api.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_authenticated_requests_update_last_used_at_most_once_a_minute(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    user = await make_user(stores)
    key = stores.keys("sess", user.session_id)
    await stores.redis.hset(key, "last_used", 1000)
    await api.get("/me", headers=user.headers)
    touched = int(await stores.redis.hget(key, "last_used"))
    assert abs(touched - time.time()) < 5
    await stores.redis.hset(key, "last_used", touched - 10)
    await api.get("/me", headers=user.headers)
    assert int(await stores.redis.hget(key, "last_used")) == touched - 10


async def test_sessions_list_drops_sessions_that_expired(api: httpx.AsyncClient, stores: Stores) -> None:
    await signup(api, "oscar")
    phone = await login(api, "oscar")
    laptop = await login(api, "oscar")
    phone_sid = phone["refresh_token"].partition(".")[0]
    await stores.redis.delete(stores.keys("sess", phone_sid))  # as if its TTL had run out
    items = (await api.get("/sessions", headers=bearer(laptop["access_token"]))).json()["items"]
    assert phone_sid not in {s["id"] for s in items}
    assert len(items) == 2
    user_id = laptop["user"]["id"]
    assert not await stores.redis.sismember(stores.keys("user_sessions", user_id), phone_sid)


async def test_a_token_minted_on_a_clock_two_minutes_ahead_is_accepted(api: httpx.AsyncClient, stores: Stores) -> None:
    """Another instance's clock runs 2 minutes fast: its tokens' iat is in our future."""
    user = await make_user(stores)
    token, _ = mint_access_token(stores.settings.jwt_secret, user.id, user.session_id, 900, now=time.time() + 120)
    assert (await api.get("/me", headers=bearer(token))).status_code == 200


def test_a_token_issued_beyond_the_clock_leeway_is_refused() -> None:
    token, _ = mint_access_token("s" * 40, 7, "sid", ttl=3600, now=time.time() + CLOCK_LEEWAY + 60)
    with pytest.raises(InvalidToken, match="iat"):
        TokenVerifier("s" * 40).verify(token)


def test_the_clock_leeway_does_not_stretch_exp() -> None:
    token, _ = mint_access_token("s" * 40, 7, "sid", ttl=60, now=time.time() - 61)
    with pytest.raises(InvalidToken):
        TokenVerifier("s" * 40).verify(token)


def test_verifier_memo_still_refuses_a_token_once_it_expires() -> None:
    verifier = TokenVerifier("s" * 40)
    token, _ = mint_access_token("s" * 40, 7, "sid", ttl=1)
    assert verifier.verify(token).user_id == 7
    assert verifier.verify(token).user_id == 7  # from the memo
    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_verifier_memo_is_bounded() -> None:
    verifier = TokenVerifier("s" * 40, max_entries=3)
    tokens = [mint_access_token("s" * 40, n, f"sid{n}", ttl=60)[0] for n in range(5)]
    assert [verifier.verify(t).user_id for t in tokens] == [0, 1, 2, 3, 4]
    assert len(verifier._verified) == 3
