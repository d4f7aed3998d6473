"""The client's REST methods against a real server: typed answers, typed errors."""

import pytest

from nubo_backend.client import (
    Conflict,
    Conversation,
    Forbidden,
    Message,
    NotFound,
    Nubo,
    Post,
    Unauthorized,
    ValidationFailed,
)
from nubo_backend.stores import Stores
from tests.factories import make_user


async def test_signup_login_and_the_main_routes_answer_typed_objects(stores: Stores, server) -> None:
    alice = await Nubo.signup(server.url, "alice", "alice@example.com", "correct horse")
    bob = await Nubo.signup(server.url, "bob", "bob@example.com", "battery staple")
    try:
        assert (await alice.me()).email == "alice@example.com"
        assert (await alice.follow(bob.user.id)).followed_by_me is True
        post = await bob.create_post("Hello #nubo")
        assert isinstance(post, Post) and post.body == "Hello #nubo" and post.author.username == "bob"
        assert [p.id for p in (await alice.feed()).items] == [post.id]
        assert (await alice.like(post.id))["like_count"] == 1
        assert [u.username for u in (await bob.likers(post.id)).items] == ["alice"]
        comment = await alice.comment(post.id, "Nice")
        assert [c.id for c in (await bob.comments(post.id)).items] == [comment.id]
        conversation = await alice.open_direct(bob.user.id)
        assert isinstance(conversation, Conversation)
        assert {m.username for m in conversation.members} == {"alice", "bob"}
        message = await alice.post_message(conversation.id, "Salut", client_id="c-1")
        assert isinstance(message, Message) and message.client_id == "c-1"
        assert [m.body for m in (await bob.messages(conversation.id)).items] == ["Salut"]
        notifications = (await bob.notifications()).items
        assert {n.type for n in notifications} == {"follow.created", "like.created", "comment.created"}
        assert [u.username for u in (await alice.search_users("bo")).items] == ["bob"]
        await alice.refresh()
        assert (await alice.me()).username == "alice"  # on the rotated token
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_api_errors_are_raised_as_their_family_with_code_status_and_message(
    stores: Stores, server, login
) -> None:
    alice, bob, mallory = await make_user(stores), await make_user(stores), await make_user(stores)
    client = await login(server, alice)
    with pytest.raises(NotFound) as missing:
        await client.post(999)
    assert (missing.value.status, missing.value.code) == (404, "post_not_found")
    with pytest.raises(ValidationFailed) as self_follow:
        await client.follow(alice.id)
    assert self_follow.value.code == "self_follow"
    conversation = await client.open_direct(bob.id)
    with pytest.raises(Forbidden) as outsider:
        await (await login(server, mallory)).messages(conversation.id)
    assert outsider.value.status == 403 and outsider.value.error
    with pytest.raises(Conflict):
        await Nubo.signup(server.url, alice.username, "other@example.com", "password123")
    with pytest.raises(Unauthorized) as wrong:
        await Nubo.login(server.url, alice.username, "not the password")
    assert wrong.value.code == "invalid_credentials"


def test_the_shared_tls_context_is_built_once_and_still_verifies_certificates() -> None:
    import ssl

    from nubo_backend.client.api import _tls_context

    assert _tls_context() is _tls_context()  # built once: it costs ~18 ms of CPU per client otherwise
    context = _tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_reposts_bookmarks_history_and_reactions_answer_typed_objects(stores: Stores, server) -> None:
    alice = await Nubo.signup(server.url, "alice", "alice@example.com", "correct horse")
    bob = await Nubo.signup(server.url, "bob", "bob@example.com", "battery staple")
    try:
        post = await bob.create_post("draft")
        assert (await alice.repost(post.id)).reposted_by_me is True
        assert [u.username for u in (await bob.reposters(post.id)).items] == ["alice"]
        quote = await alice.create_post("so true", quote_of=post.id)
        assert quote.quote_of == post.id and quote.quote["body"] == "draft"
        assert (await alice.bookmark(post.id)).bookmarked_by_me is True
        assert [p.id for p in (await alice.bookmarks()).items] == [post.id]
        await bob.edit_post(post.id, "final")
        assert [v.body for v in (await alice.post_history(post.id)).items] == ["draft"]
        conversation = await alice.open_direct(bob.user.id)
        message = await alice.post_message(conversation.id, "Salut")
        reactions = await bob.react(message.id, "\U0001f44d")
        assert [(r.emoji, r.count, r.reacted_by_me) for r in reactions] == [("\U0001f44d", 1, True)]
        assert (await alice.messages(conversation.id)).items[0].reactions[0].count == 1
        assert await bob.unreact(message.id, "\U0001f44d") == []
        await alice.edit_message(message.id, "Salut !")
        assert [v.body for v in (await bob.message_history(message.id)).items] == ["Salut"]
    finally:
        await alice.aclose()
        await bob.aclose()
