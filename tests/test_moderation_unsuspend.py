"""Lifting a suspension: moderators only, idempotent, recorded, and the account logs in again."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import PASSWORD, make_user
from tests.test_moderation import assert_error, filed, make_moderator, resolve


async def test_a_moderator_lifts_a_suspension_and_the_account_logs_in_again(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    await resolve(api, moderator, await filed(api, alice, "user", bob.id), "suspend")
    credentials = {"username": bob.username, "password": PASSWORD}
    assert_error(await api.post("/login", json=credentials), 403, "account_suspended")

    lifted = await api.delete(f"/users/{bob.id}/suspension", headers=moderator.headers)
    assert lifted.json() == {"user_id": bob.id, "suspended": False, "lifted": True}
    assert (await api.post("/login", json=credentials)).status_code == 200
    assert_error(await api.get("/me", headers=bob.headers), 401, "invalid_token")  # old sessions stay revoked

    again = await api.delete(f"/users/{bob.id}/suspension", headers=moderator.headers)
    assert again.json() == {"user_id": bob.id, "suspended": False, "lifted": False}
    actions = await stores.pg.fetch(
        "SELECT moderator_id, action, target_type, target_id, details FROM moderation_actions"
        " WHERE action = 'unsuspend'"
    )
    assert [(a["moderator_id"], a["target_type"], a["target_id"]) for a in actions] == [(moderator.id, "user", bob.id)]
    assert '"suspended_at"' in actions[0]["details"]


async def test_only_a_moderator_lifts_a_suspension_of_a_user_that_exists(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, moderator = await make_user(stores), await make_moderator(stores)
    assert_error(await api.delete(f"/users/{alice.id}/suspension", headers=alice.headers), 403, "not_a_moderator")
    assert_error(await api.delete("/users/987654/suspension", headers=moderator.headers), 404, "user_not_found")
    assert (await api.delete(f"/users/{alice.id}/suspension")).status_code == 401
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    assert {"403", "404"} <= set(paths["/users/{user_id}/suspension"]["delete"]["responses"])
