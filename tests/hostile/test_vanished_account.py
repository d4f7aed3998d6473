"""Case 2: a valid token and live session for a user who has no account is the seed's 401
on every route, and the /ws upgrade is refused."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.hostile.conftest import ServerLog
from tests.support import PrivateRedis, ServerProcess

INVALID = {"error": "Token invalide", "code": "invalid_token"}


async def token_for(stores: Stores, user_id: int) -> dict[str, str]:
    """What `nubo token --sub` makes: a live session and an access token naming it."""
    session = await create_session(stores.redis, stores.keys, user_id, 3600, user_agent="tests")
    token, _ = mint_access_token(stores.settings.jwt_secret, user_id, session.session_id, 900)
    return {"Authorization": f"Bearer {token}"}


REQUESTS = [
    ("GET", "/me", None),
    ("POST", "/posts", {"body": "hello"}),
    ("POST", "/conversations", {"user_id": 1}),
    ("POST", "/conversations", {"member_ids": [1], "title": "group"}),
    ("POST", "/users/1/follow", None),
    ("PUT", "/posts/1/like", None),
    ("GET", "/feed", None),
    ("GET", "/broadcast", None),
]


async def test_token_of_a_user_that_never_existed_is_refused_everywhere(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog
) -> None:
    target = await make_user(stores)
    post = await api.post("/posts", json={"body": "a post"}, headers=target.headers)
    assert post.status_code == 201
    ghost = await token_for(stores, 99999)
    for method, path, body in REQUESTS:
        response = await api.request(method, path, json=body, headers=ghost)
        assert (response.status_code, response.json()) == (401, INVALID), (method, path, response.text)


async def test_token_of_a_deleted_account_is_refused(
    api: httpx.AsyncClient, stores: Stores, server_log: ServerLog
) -> None:
    user = await make_user(stores)
    assert (await api.get("/me", headers=user.headers)).status_code == 200
    # Deleted behind the API's back (as while Redis was down): the session stays live.
    await stores.pg.execute("DELETE FROM users WHERE id = $1", user.id)
    # The instance may trust its memo of the session for NUBO_SESSION_MEMO_TTL seconds; a
    # fresh session of the same account is asked about at once.
    headers = await token_for(stores, user.id)
    response = await api.post("/posts", json={"body": "hello"}, headers=headers)
    assert (response.status_code, response.json()) == (401, INVALID)


async def test_websocket_upgrade_of_a_user_without_account_is_refused(
    stores: Stores, server: ServerProcess, server_log: ServerLog
) -> None:
    ghost = await token_for(stores, 99999)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url, additional_headers=ghost, open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
    assert b"Token invalide" in refused.value.response.body


async def test_while_redis_is_down_a_token_without_account_is_still_refused(
    api: httpx.AsyncClient, stores: Stores, start_server
) -> None:
    redis = PrivateRedis().start()
    try:
        server = start_server({"NUBO_REDIS_URL": redis.url})
        log = ServerLog(server)
        user = await make_user(stores)  # an account in the shared database
        claims = stores.settings.jwt_secret
        ghost, _ = mint_access_token(claims, 99999, "any-session", 900)
        member, _ = mint_access_token(claims, user.id, "any-session", 900)
        redis.stop()  # the guard can no longer ask about sessions: it trusts signatures
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            refused = await client.get("/me", headers={"Authorization": f"Bearer {ghost}"})
            trusted = await client.get("/me", headers={"Authorization": f"Bearer {member}"})
        assert (refused.status_code, refused.json()) == (401, INVALID)
        assert trusted.status_code == 200, trusted.text
        log.assert_no_traceback()
    finally:
        redis.stop()
