"""Reports and moderation: who may report what, the snapshot, limits, and each moderator action."""

from __future__ import annotations

from typing import Any

import httpx

from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.realtime.events import events_after
from nubo_backend.stores import Stores
from tests.auth_support import login
from tests.factories import PASSWORD, TestUser, make_user


async def make_moderator(stores: Stores) -> TestUser:
    moderator = await make_user(stores)
    await stores.pg.execute("UPDATE users SET role = 'moderator' WHERE id = $1", moderator.id)
    return moderator


async def post_by(api: httpx.AsyncClient, author: TestUser, body: str = "a post") -> int:
    response = await api.post("/posts", json={"body": body}, headers=author.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def comment_by(api: httpx.AsyncClient, author: TestUser, post_id: int, body: str = "a comment") -> int:
    response = await api.post(f"/posts/{post_id}/comments", json={"body": body}, headers=author.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def message_by(
    api: httpx.AsyncClient, sender: TestUser, to: TestUser, body: str = "a message"
) -> tuple[int, int]:
    cid = (await api.post("/conversations", json={"user_id": to.id}, headers=sender.headers)).json()["id"]
    response = await api.post(f"/conversations/{cid}/messages", json={"body": body}, headers=sender.headers)
    assert response.status_code == 201, response.text
    return cid, response.json()["id"]


async def report(
    api: httpx.AsyncClient, reporter: TestUser, target_type: str, target_id: int, reason: str = "spam", **extra: Any
) -> httpx.Response:
    payload = {"target_type": target_type, "target_id": target_id, "reason": reason, **extra}
    return await api.post("/reports", json=payload, headers=reporter.headers)


async def filed(api: httpx.AsyncClient, reporter: TestUser, target_type: str, target_id: int) -> int:
    response = await report(api, reporter, target_type, target_id)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def resolve(
    api: httpx.AsyncClient, moderator: TestUser, report_id: int, action: str, **extra: Any
) -> httpx.Response:
    payload = {"action": action, **extra}
    return await api.post(f"/reports/{report_id}/resolve", json=payload, headers=moderator.headers)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["error"]
    return body


# --- reporting -----------------------------------------------------------------------


async def test_a_report_keeps_a_copy_of_the_post_as_it_was_when_reported(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    post_id = await post_by(api, bob, "buy my stuff")
    response = await report(api, alice, "post", post_id, "spam", note="third time today")
    assert response.status_code == 201, response.text
    filed_report = response.json()
    assert filed_report["target"] == {"type": "post", "id": post_id, "user_id": bob.id}
    assert filed_report["status"] == "open" and filed_report["note"] == "third time today"

    edited = await api.patch(f"/posts/{post_id}", json={"body": "nothing to see"}, headers=bob.headers)
    assert edited.status_code == 200, edited.text
    shown = (await api.get(f"/reports/{filed_report['id']}", headers=moderator.headers)).json()
    assert shown["snapshot"]["body"] == "buy my stuff"
    assert shown["snapshot"]["author_id"] == bob.id and shown["snapshot"]["author_username"] == bob.username


async def test_users_comments_and_messages_can_be_reported_each_with_its_snapshot(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await api.patch("/me", json={"bio": "rude bio"}, headers=bob.headers)
    comment_id = await comment_by(api, bob, await post_by(api, alice), "rude comment")
    cid, message_id = await message_by(api, bob, alice, "rude message")

    on_user = (await report(api, alice, "user", bob.id, "harassment")).json()
    on_comment = (await report(api, alice, "comment", comment_id, "hate")).json()
    on_message = (await report(api, alice, "message", message_id, "harassment")).json()

    assert on_user["snapshot"]["username"] == bob.username and on_user["snapshot"]["bio"] == "rude bio"
    assert on_comment["snapshot"]["body"] == "rude comment" and on_comment["target"]["user_id"] == bob.id
    assert on_message["snapshot"]["body"] == "rude message"
    assert on_message["snapshot"]["conversation_id"] == cid and on_message["target"]["user_id"] == bob.id


async def test_an_unknown_reason_or_target_type_is_a_422_naming_the_field(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    body = assert_error(await report(api, alice, "user", bob.id, "i_dont_like_them"), 422, "validation_error")
    assert [d["field"] for d in body["details"]] == ["reason"]
    body = assert_error(await report(api, alice, "hashtag", bob.id), 422, "validation_error")
    assert [d["field"] for d in body["details"]] == ["target_type"]


async def test_a_note_longer_than_1000_characters_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    assert_error(await report(api, alice, "user", bob.id, note="x" * 1001), 422, "validation_error")
    assert (await report(api, alice, "user", bob.id, note="x" * 1000)).status_code == 201


async def test_an_unknown_target_is_a_404_saying_what_was_not_found(api: httpx.AsyncClient, stores: Stores) -> None:
    alice = await make_user(stores)
    for kind in ("user", "post", "comment", "message"):
        assert_error(await report(api, alice, kind, 999_999), 404, f"{kind}_not_found")
    assert_error(await report(api, alice, "post", 2**63), 422, "validation_error")  # beyond bigint
    assert await stores.pg.fetchval("SELECT count(*) FROM reports") == 0


async def test_reporting_yourself_or_your_own_content_is_refused(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    post_id = await post_by(api, alice)
    comment_id = await comment_by(api, alice, post_id)
    _, message_id = await message_by(api, alice, bob)
    for kind, target_id in (("user", alice.id), ("post", post_id), ("comment", comment_id), ("message", message_id)):
        assert_error(await report(api, alice, kind, target_id), 422, "own_content")
    assert await stores.pg.fetchval("SELECT count(*) FROM reports") == 0


async def test_a_message_can_be_reported_only_by_a_member_of_its_conversation(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, eve = await make_user(stores), await make_user(stores), await make_user(stores)
    _, message_id = await message_by(api, bob, alice)
    assert_error(await report(api, eve, "message", message_id), 403, "not_a_member")
    assert (await report(api, alice, "message", message_id)).status_code == 201


async def test_a_deleted_message_is_not_reportable(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    _, message_id = await message_by(api, bob, alice)
    assert (await api.delete(f"/messages/{message_id}", headers=bob.headers)).status_code in (200, 204)
    assert_error(await report(api, alice, "message", message_id), 404, "message_not_found")


async def test_the_101st_report_in_a_minute_is_a_429_with_retry_after(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    for _ in range(100):
        response = await report(api, alice, "user", bob.id)
        assert response.status_code == 201, response.text
    limited = await report(api, alice, "user", bob.id)
    body = assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60 and body["details"]["retry_after"] >= 1
    assert await stores.pg.fetchval("SELECT count(*) FROM reports") == 100
    assert (await report(api, carol, "user", bob.id)).status_code == 201  # per reporter


# --- moderators ----------------------------------------------------------------------


async def test_only_moderators_list_read_and_resolve_reports(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    report_id = await filed(api, alice, "user", bob.id)
    for response in (
        await api.get("/reports", headers=alice.headers),
        await api.get(f"/reports/{report_id}", headers=alice.headers),
        await resolve(api, alice, report_id, "dismiss"),
    ):
        assert_error(response, 403, "not_a_moderator")
    assert_error(await api.get("/reports"), 401, "missing_authorization")


async def test_reports_are_listed_open_first_newest_first_and_paged_without_gaps(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    ids = [await filed(api, alice, "user", bob.id) for _ in range(5)]
    assert (await resolve(api, moderator, ids[4], "dismiss")).status_code == 200
    assert (await resolve(api, moderator, ids[1], "dismiss")).status_code == 200

    seen, cursor = [], None
    for _ in range(10):  # bounded: 5 reports, 2 a page
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/reports", params=params, headers=moderator.headers)).json()
        seen += [(r["id"], r["status"]) for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [(ids[3], "open"), (ids[2], "open"), (ids[0], "open"), (ids[4], "resolved"), (ids[1], "resolved")]
    open_only = (await api.get("/reports", params={"status": "open"}, headers=moderator.headers)).json()
    assert [r["id"] for r in open_only["items"]] == [ids[3], ids[2], ids[0]]
    bad_cursor = await api.get("/reports", params={"cursor": "garbage"}, headers=moderator.headers)
    assert_error(bad_cursor, 400, "invalid_cursor")
    bad_status = await api.get("/reports", params={"status": "maybe"}, headers=moderator.headers)
    assert_error(bad_status, 422, "validation_error")


async def test_dismiss_resolves_once_and_records_who_when_what(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    report_id = await filed(api, alice, "user", bob.id)
    response = await resolve(api, moderator, report_id, "dismiss", note="not abuse")
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved" and resolved["resolution"] == "dismiss"
    assert resolved["resolved_by"] == moderator.id and resolved["resolved_at"]
    [action] = resolved["actions"]
    assert action["action"] == "dismiss" and action["details"]["note"] == "not abuse" and action["created_at"]
    assert action["moderator"] == {"id": moderator.id, "username": moderator.username}
    assert action["target"] == {"type": "user", "id": bob.id}

    assert_error(await resolve(api, moderator, report_id, "suspend"), 409, "report_resolved")
    assert (await api.get(f"/reports/{report_id}", headers=moderator.headers)).json()["actions"] == [action]


async def test_bad_resolutions_are_clear_4xx(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    report_id = await filed(api, alice, "user", bob.id)
    assert_error(await resolve(api, moderator, report_id, "ban_forever"), 422, "validation_error")
    assert_error(await resolve(api, moderator, report_id, "remove"), 422, "action_not_applicable")
    assert_error(await resolve(api, moderator, 999_999, "dismiss"), 404, "report_not_found")
    assert_error(await api.get("/reports/999999", headers=moderator.headers), 404, "report_not_found")
    assert (await api.get(f"/reports/{report_id}", headers=moderator.headers)).json()["status"] == "open"


async def test_remove_deletes_a_post_through_the_posts_service_cache_included(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    post_id = await post_by(api, bob, "spam spam")
    assert (await api.get(f"/posts/{post_id}")).status_code == 200  # now cached
    report_id = await filed(api, alice, "post", post_id)

    resolved = (await resolve(api, moderator, report_id, "remove")).json()
    assert resolved["resolution"] == "remove" and resolved["actions"][0]["details"]["outcome"] == "removed"
    assert_error(await api.get(f"/posts/{post_id}"), 404, "post_not_found")
    assert post_id not in [p["id"] for p in (await api.get("/posts")).json()["items"]]
    assert await stores.pg.fetchval("SELECT posts_count FROM users WHERE id = $1", bob.id) == 0
    # The report still shows what was removed.
    assert resolved["snapshot"]["body"] == "spam spam"


async def test_remove_of_content_already_deleted_resolves_and_says_so(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    post_id = await post_by(api, bob)
    report_id = await filed(api, alice, "post", post_id)
    assert (await api.delete(f"/posts/{post_id}", headers=bob.headers)).status_code == 204
    resolved = (await resolve(api, moderator, report_id, "remove")).json()
    assert resolved["status"] == "resolved" and resolved["actions"][0]["details"]["outcome"] == "already_gone"


async def test_remove_deletes_a_comment_and_a_message_and_members_hear_of_it(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    post_id = await post_by(api, alice)
    comment_id = await comment_by(api, bob, post_id)
    _, message_id = await message_by(api, bob, alice, "nasty")
    on_comment = await filed(api, alice, "comment", comment_id)
    on_message = await filed(api, alice, "message", message_id)

    assert (await resolve(api, moderator, on_comment, "remove")).status_code == 200
    comments = (await api.get(f"/posts/{post_id}/comments")).json()["items"]
    assert comments == [] and (await api.get(f"/posts/{post_id}")).json()["comment_count"] == 0

    assert (await resolve(api, moderator, on_message, "remove")).status_code == 200
    assert await stores.pg.fetchval("SELECT deleted_at IS NOT NULL FROM messages WHERE id = $1", message_id)
    for member in (alice, bob):
        events = await events_after(stores, member.id, 0)
        assert any(e["type"] == "message.deleted" and e["data"]["id"] == message_id for e in events)


async def test_suspend_logs_the_account_out_everywhere_and_refuses_its_login(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    logged_in = await login(api, bob.username)
    report_id = await filed(api, alice, "user", bob.id)

    resolved = (await resolve(api, moderator, report_id, "suspend")).json()
    assert resolved["resolution"] == "suspend" and resolved["actions"][0]["details"]["revoked_sessions"] == 2

    for token in (bob.token, logged_in["access_token"]):  # tokens not yet expired stop working
        assert_error(await api.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")
    refreshed = await api.post("/refresh", json={"refresh_token": logged_in["refresh_token"]})
    assert refreshed.status_code == 401
    refused = await api.post("/login", json={"username": bob.username, "password": PASSWORD})
    assert_error(refused, 403, "account_suspended")
    # Only to someone who knows the password: a wrong one is the usual 401.
    wrong = await api.post("/login", json={"username": bob.username, "password": "not the password"})
    assert_error(wrong, 401, "invalid_credentials")


async def test_a_session_that_outlives_the_suspension_is_refused_by_the_guard(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    report_id = await filed(api, alice, "user", bob.id)
    assert (await resolve(api, moderator, report_id, "suspend")).status_code == 200
    # As if a login racing the suspension had opened a session just after it revoked them all.
    session = await create_session(stores.redis, stores.keys, bob.id, stores.settings.refresh_token_ttl)
    token, _ = mint_access_token(stores.settings.jwt_secret, bob.id, session.session_id, 900)
    assert_error(await api.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


async def test_suspend_on_a_content_report_suspends_its_author(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, bob, moderator = await make_user(stores), await make_user(stores), await make_moderator(stores)
    report_id = await filed(api, alice, "comment", await comment_by(api, bob, await post_by(api, alice)))
    assert (await resolve(api, moderator, report_id, "suspend")).status_code == 200
    assert await stores.pg.fetchval("SELECT suspended_at IS NOT NULL FROM users WHERE id = $1", bob.id)
    assert not await stores.pg.fetchval("SELECT suspended_at IS NOT NULL FROM users WHERE id = $1", alice.id)


async def test_a_moderator_cannot_be_suspended(api: httpx.AsyncClient, stores: Stores) -> None:
    alice, moderator, other = await make_user(stores), await make_moderator(stores), await make_moderator(stores)
    report_id = await filed(api, alice, "user", other.id)
    assert_error(await resolve(api, moderator, report_id, "suspend"), 403, "target_is_moderator")
    assert (await api.get("/me", headers=other.headers)).status_code == 200
    assert (await api.get(f"/reports/{report_id}", headers=moderator.headers)).json()["status"] == "open"


async def test_openapi_describes_the_moderation_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/docs/openapi.json")).json()["paths"]
    body = paths["/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ReportIn"}
    assert paths["/reports"]["post"]["security"] == [{"bearer": []}]
    listing = {p["name"]: p["schema"] for p in paths["/reports"]["get"]["parameters"]}
    assert listing["limit"]["maximum"] == 100 and listing["status"]["enum"] == ["open", "resolved"]
    assert "requestBody" in paths["/reports/{report_id}/resolve"]["post"]
    report_id = {p["name"]: p for p in paths["/reports/{report_id}"]["get"]["parameters"]}["report_id"]
    assert report_id["in"] == "path" and report_id["schema"]["type"] == "integer"
    assert {"403", "429"} <= set(paths["/reports"]["post"]["responses"])
    assert {"403", "409"} <= set(paths["/reports/{report_id}/resolve"]["post"]["responses"])
