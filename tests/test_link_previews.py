"""Link previews: cards from local pages of our own (OpenGraph, Twitter card, bare <title>),
and the fetch rules (public addresses only on every hop, redirects, byte and time caps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from nubo_backend.previews.addresses import AddressRefused, checked_address, is_public
from nubo_backend.previews.cards import decode, parse_card
from nubo_backend.previews.fetch import USER_AGENT, FetchRefused, fetch
from nubo_backend.previews.service import first_link
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.media_support import png
from tests.polling import eventually
from tests.preview_pages import BIG_SIZE, PreviewPages

RULES = {"time_cap": 3.0, "max_redirects": 3, "max_bytes": 1024 * 1024, "accept": "text/html"}


@pytest.fixture
async def pages() -> AsyncIterator[PreviewPages]:
    async with PreviewPages().running() as served:
        yield served


async def _card(url: str, **rules) -> dict | None:
    page = await fetch(url, **{**RULES, "allow_private": True, **rules})
    return parse_card(decode(page.body, page.charset), url)


async def test_an_opengraph_page_gives_title_description_and_image(pages: PreviewPages):
    card = await _card(pages.url("/og"))
    assert card == {"url": pages.url("/og"), "title": "OG title", "description": "OG description",
                    "image_url": pages.url("/image.png")}
    assert pages.user_agents == [USER_AGENT]


async def test_a_twitter_card_page_gives_its_title_and_description(pages: PreviewPages):
    card = await _card(pages.url("/twitter"))
    assert (card["title"], card["description"], card["image_url"]) == ("Twitter title", "Twitter text", None)


async def test_a_bare_title_gives_a_card_and_no_metadata_gives_none(pages: PreviewPages):
    assert (await _card(pages.url("/title")))["title"] == "Just a title"
    assert await _card(pages.url("/nothing")) is None


async def test_a_50_mb_body_is_read_only_up_to_the_byte_cap(pages: PreviewPages):
    page = await fetch(pages.url("/big"), **{**RULES, "allow_private": True})
    assert page.truncated and len(page.body) == RULES["max_bytes"] < BIG_SIZE
    assert parse_card(decode(page.body, None), pages.url("/big"))["title"] == "Big"


async def test_a_slow_server_is_given_up_on_at_the_time_cap(pages: PreviewPages):
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="took more than"):
        await fetch(pages.url("/slow"), **{**RULES, "allow_private": True, "time_cap": 0.5})
    assert time.monotonic() - started < 5


async def test_a_redirect_loop_stops_after_three_redirects(pages: PreviewPages):
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        await fetch(pages.url("/loop"), **{**RULES, "allow_private": True})
    assert pages.hits["/loop"] == 4


async def test_loopback_is_refused_when_private_addresses_are_forbidden(pages: PreviewPages):
    with pytest.raises(FetchRefused, match="non-public"):
        await fetch(pages.url("/og"), **{**RULES, "allow_private": False})
    assert pages.hits == {}


async def test_a_dns_name_resolving_to_a_private_address_is_refused():
    async def resolver(host: str, port: int) -> list[str]:
        return {"intranet.example": ["10.1.2.3"], "mixed.example": ["93.184.216.34", "192.168.0.1"]}[host]

    for host in ("intranet.example", "mixed.example"):
        with pytest.raises(AddressRefused):
            await checked_address(host, 80, allow_private=False, resolver=resolver)
    with pytest.raises(FetchRefused, match="non-public"):  # the system resolver: localhost is 127.0.0.1
        await fetch("http://localhost:9/", **{**RULES, "allow_private": False})


async def test_a_redirect_to_loopback_is_refused_on_that_hop():
    """The first hop is public (a stand-in resolver and network); its redirect to 127.0.0.1
    is checked again, and refused before any connection is made."""
    asked: list[str] = []

    def network(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:6379/"})

    async def resolver(host: str, port: int) -> list[str]:
        return {"public.example": ["93.184.216.34"]}[host]

    with pytest.raises(FetchRefused, match="non-public"):
        await fetch("http://public.example/page", **{**RULES, "allow_private": False}, resolver=resolver,
                    transport=httpx.MockTransport(network))
    assert asked == ["http://93.184.216.34/page"]  # connected to the address checked, once


async def test_only_http_and_https_are_fetched():
    for url in ("file:///etc/passwd", "gopher://example.com/", "ftp://example.com/x", "http://user:pw@example.com/"):
        with pytest.raises(FetchRefused):
            await fetch(url, **{**RULES, "allow_private": True})


def test_public_addresses_are_told_from_every_kind_of_private_one():
    import ipaddress

    refused = ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
               "224.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
               "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "::"]
    for address in refused:
        assert not is_public(ipaddress.ip_address(address)), address
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"):
        assert is_public(ipaddress.ip_address(address)), address


def test_the_first_link_is_found_without_its_trailing_punctuation():
    assert first_link("see https://example.com/a?b=1. and http://x.test") == "https://example.com/a?b=1"
    assert first_link("(https://example.com/x)") == "https://example.com/x"
    assert first_link("no link, javascript:alert(1)") is None


async def test_a_post_gets_its_links_card_after_the_commit_with_a_re_encoded_image(
    stores: Stores, start_server, pages: PreviewPages
):
    server = start_server({"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"})
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        created = await api.post("/posts", json={"body": f"look {pages.url('/og')}!"}, headers=alice.headers)
        assert created.json()["preview"] is None  # never fetched in the request
        post_id = created.json()["id"]

        async def preview():
            return (await api.get(f"/posts/{post_id}")).json()["preview"]

        card = await _first_card(preview)
        assert (card["url"], card["title"], card["description"]) == (pages.url("/og"), "OG title", "OG description")
        image = await api.get(card["image"])
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        assert image.content != png(120, 80)  # re-encoded by the media pipeline, not the site's bytes
    events = await stores.mongo["events"].find({"user_id": alice.id, "type": "post.updated"}).to_list()
    assert [e["data"]["post_id"] for e in events] == [post_id]


async def _first_card(probe) -> dict:
    """The post's card once it is there (fetched in the background after the commit)."""
    deadline = time.monotonic() + 15
    while (card := await probe()) is None:
        assert time.monotonic() < deadline, "no card"
        await asyncio.sleep(0.05)
    return card


async def test_a_posts_link_to_a_private_address_gets_no_card(api: httpx.AsyncClient, stores: Stores,
                                                               pages: PreviewPages):
    alice = await make_user(stores)
    created = await api.post("/posts", json={"body": f"see {pages.url('/og')}"}, headers=alice.headers)
    post_id = created.json()["id"]

    async def stored():
        return await stores.pg.fetchval("SELECT ok FROM link_previews WHERE url = $1", pages.url("/og"))

    assert await eventually(stored, False, within=10) is False  # tried, refused, cached as such
    assert (await api.get(f"/posts/{post_id}")).json()["preview"] is None
    assert pages.hits == {}


async def test_a_links_card_is_fetched_once_and_reused_for_the_next_post(
    stores: Stores, start_server, pages: PreviewPages
):
    server = start_server({"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"})
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        cards = []
        for n in range(2):
            created = await api.post("/posts", json={"body": f"{n} {pages.url('/title')}"}, headers=alice.headers)
            post_id = created.json()["id"]

            async def preview(post_id=post_id):
                return (await api.get(f"/posts/{post_id}")).json()["preview"]

            cards.append(await _first_card(preview))
    assert cards[0] == cards[1] and cards[0]["title"] == "Just a title"
    assert pages.hits == {"/title": 1}


async def test_a_messages_link_gets_its_card_announced_to_the_members(
    stores: Stores, start_server, pages: PreviewPages
):
    server = start_server({"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"})
    alice, bob = await make_user(stores), await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        cid = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()["id"]
        sent = await api.post(f"/conversations/{cid}/messages", json={"body": f"see {pages.url('/twitter')}"},
                              headers=alice.headers)
        assert sent.json()["preview"] is None

        async def preview():
            return (await api.get(f"/conversations/{cid}/messages", headers=bob.headers)).json()["items"][0]["preview"]

        card = await _first_card(preview)
    assert (card["title"], card["description"], card["image"]) == ("Twitter title", "Twitter text", None)

    async def updated():
        events = await stores.mongo["events"].find({"type": "message.updated"}).to_list()
        return sorted(e["user_id"] for e in events if e["data"]["preview"] is not None)

    assert await eventually(updated, sorted([alice.id, bob.id])) == sorted([alice.id, bob.id])
