"""An open socket is held to its access token's exp: warned, refreshed in-band, or closed 4001.
And every refusal of a frame names the frame (`ref`)."""

import asyncio
import dataclasses

import pytest
from websockets.exceptions import ConnectionClosed

from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.stores import Stores
from tests.e2e.ws_support import frames_until, next_frame, open_ws
from tests.factories import TestUser, make_user


def _with_token_for(stores: Stores, user: TestUser, ttl: int) -> TestUser:
    token, _ = mint_access_token(stores.settings.jwt_secret, user.id, user.session_id, ttl)
    return dataclasses.replace(user, token=token)


async def test_a_socket_is_warned_before_its_token_expires_then_closed_4001(stores: Stores, server) -> None:
    alice = _with_token_for(stores, await make_user(stores), ttl=3)
    ws = await open_ws(server, alice)
    warned = await frames_until(ws, lambda f: isinstance(f, dict) and f.get("type") == "token_expiring")
    assert warned[-1]["expires_at"] > 0
    with pytest.raises(ConnectionClosed) as closed:
        await frames_until(ws, lambda f: False, within=6)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_refresh_with_a_new_token_keeps_the_socket_open_past_the_old_exp(stores: Stores, server) -> None:
    user = await make_user(stores)
    ws = await open_ws(server, _with_token_for(stores, user, ttl=3))
    await ws.send(f'{{"type": "refresh", "access_token": "{user.token}"}}')
    reply = await frames_until(ws, lambda f: isinstance(f, dict) and f.get("type") == "refreshed")
    assert reply[-1]["expires_at"] > 0
    await asyncio.sleep(4)  # past the first token's exp
    await ws.send('{"type": "ping"}')
    assert (await frames_until(ws, lambda f: isinstance(f, dict) and f.get("type") == "pong"))[-1] == {"type": "pong"}


async def test_refresh_with_someone_elses_token_is_refused_and_names_the_frame(stores: Stores, server) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    ws = await open_ws(server, alice)
    await ws.send(f'{{"type": "refresh", "access_token": "{bob.token}"}}')
    error = await next_frame(ws)
    assert error == {"type": "error", "code": "invalid_token", "error": "Token invalide", "ref": "refresh"}


async def test_rate_limit_refusals_name_the_frame_they_refuse(stores: Stores, start_server) -> None:
    server = start_server({"NUBO_WS_RATE_LIMIT": "5"})
    alice = await make_user(stores)
    ws = await open_ws(server, alice)
    for n in range(8):
        await ws.send(f'{{"type": "ping", "client_id": "p{n}"}}')
    frames = [await next_frame(ws) for _ in range(8)]
    refused = [f["ref"] for f in frames if f.get("code") == "rate_limited"]
    assert refused and all(ref.startswith("p") for ref in refused)
    assert len(refused) + sum(f == {"type": "pong"} for f in frames) == 8
