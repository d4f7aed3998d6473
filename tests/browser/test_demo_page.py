"""The demo page (GET /demo) in headless chromium, against two real instances: two users in
two browser contexts, broadcast lines, a direct message with its ack, typing, presence, an
instance killed under one page that then catches up with nothing missing or twice, and an
access token refreshed on the open socket; a post's link card, a repost and a reaction clicked
for real."""

from __future__ import annotations

import re
import signal

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import TIMEOUT_MS
from tests.polling import eventually
from tests.preview_pages import PreviewPages
from tests.support import ServerProcess

expect.set_options(timeout=TIMEOUT_MS)


async def wait_until(page: Page, expression: str, within: float = TIMEOUT_MS / 1000) -> None:
    """A condition on the page's state, polled (wait_for_function would eval, which the page's CSP forbids)."""
    assert await eventually(lambda: page.evaluate(expression), True, within=within) is True, expression


async def open_demo(browser, server: ServerProcess) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 420})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{server.url}/demo")
    return page


async def sign_up(page: Page, username: str) -> None:
    await page.fill("#username", username)
    await page.fill("#email", f"{username}@example.com")
    await page.fill("#password", f"{username} password")
    await page.click("#signup-btn")
    await expect(page.locator("#status")).to_have_text("connected")
    await wait_until(page, "window.nuboDemo.loaded === true")


async def log_in(page: Page, username: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", f"{username} password")
    await page.click("#login-btn")
    await expect(page.locator("#status")).to_have_text("connected")


async def send_message(page: Page, body: str) -> None:
    await page.fill("#message-input", body)
    await page.press("#message-input", "Enter")
    await expect(page.locator("#messages li", has_text=body).locator(".ack")).to_have_text(re.compile("✓"))


async def test_two_users_on_two_instances_chat_and_a_killed_instances_page_catches_up(
    stores, start_server, browser, screenshot
) -> None:
    a, b = start_server(), start_server()
    alice, bob = await open_demo(browser, a), await open_demo(browser, b)
    await sign_up(alice, "alice")
    await sign_up(bob, "bob")

    # A broadcast line typed on one instance's page appears on the other's.
    await alice.fill("#broadcast-input", "Salut à tous !")
    await alice.press("#broadcast-input", "Enter")
    await expect(bob.locator("#broadcast-list li")).to_have_text(["Salut à tous !"])
    await expect(alice.locator("#broadcast-list li")).to_have_text(["Salut à tous !"])

    # A direct message: acknowledged on alice's page, delivered to bob's.
    await alice.fill("#dm-username", "bob")
    await alice.press("#dm-username", "Enter")
    await expect(alice.locator("#conversation-title")).to_have_text("bob")
    await send_message(alice, "Salut Bob")
    await expect(bob.locator("#conversation-list li")).to_have_text(re.compile("alice"))
    await bob.click("#conversation-list li button")
    await expect(bob.locator("#messages li")).to_have_text(["alice: Salut Bob"])
    await bob.fill("#message-input", "Sal")  # typing reaches alice
    await expect(alice.locator("#typing")).to_have_text("bob is typing…")
    await screenshot(alice, "chat")

    # Bob's instance dies (our own process, by pid); his page says so and keeps trying.
    b.stop(signal.SIGKILL)
    await expect(bob.locator("#status")).to_have_text("reconnecting")
    await expect(bob.locator("#banner")).to_contain_text("reconnecting")
    for n in range(1, 6):
        await send_message(alice, f"m{n}")
    await screenshot(bob, "reconnecting")

    # Restarted on the same port: the page resumes from its last event id.
    start_server(port=b.port)
    await expect(bob.locator("#status")).to_have_text("connected", timeout=30_000)
    await expect(bob.locator("#banner")).to_contain_text("caught up", timeout=30_000)
    expected = ["alice: Salut Bob", *(f"alice: m{n}" for n in range(1, 6))]
    await expect(bob.locator("#messages li")).to_have_text(expected)
    state = await bob.evaluate("({connections: window.nuboDemo.connections, last: window.nuboDemo.lastEventId})")
    assert state["connections"] == 2
    await screenshot(bob, "caught-up")
    # The page's view is the server's: same messages, none twice.
    async with httpx.AsyncClient(base_url=a.url) as api:
        conversation_id = int(await bob.evaluate("window.nuboDemo.current"))
        token = await bob.evaluate("window.nuboDemo.tokens.access_token")
        page = (await api.get(f"/conversations/{conversation_id}/messages",
                              headers={"Authorization": f"Bearer {token}"})).json()
    assert [m["body"] for m in reversed(page["items"])] == ["Salut Bob", *(f"m{n}" for n in range(1, 6))]

    # Presence: alice leaves and comes back; bob's page sees both.
    await alice.click("#logout")
    await expect(bob.locator("#presence li")).to_have_text(["alice offline"])
    await log_in(alice, "alice")
    await expect(bob.locator("#presence li")).to_have_text(["alice online"])
    await screenshot(bob, "presence")


async def test_the_page_refreshes_a_short_lived_token_on_its_open_socket(stores, start_server, browser) -> None:
    server = start_server({"NUBO_ACCESS_TOKEN_TTL": "8"})
    page = await open_demo(browser, server)
    await sign_up(page, "carol")
    await wait_until(page, "window.nuboDemo.refreshes >= 2", within=30)  # two lifetimes later
    assert await page.evaluate("window.nuboDemo.connections") == 1  # never closed with 4001
    await page.fill("#broadcast-input", "still here")
    await page.press("#broadcast-input", "Enter")
    await expect(page.locator("#broadcast-list li")).to_have_text(["still here"])
    await expect(page.locator("#status")).to_have_text("connected")


async def test_the_demo_page_sets_a_strict_content_security_policy(server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as api:
        page = await api.get("/demo")
        script = await api.get("/demo/demo.js")
        missing = await api.get("/demo/nothing.js")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert script.status_code == 200 and script.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_the_demo_page_is_off_in_production_unless_enabled(start_server) -> None:
    secret = {"NUBO_JWT_SECRET": "x" * 40}
    off = start_server({"NUBO_ENV": "production", **secret})
    on = start_server({"NUBO_ENV": "production", "NUBO_DEMO_PAGE": "on", **secret})
    async with httpx.AsyncClient() as api:
        assert (await api.get(f"{off.url}/demo")).status_code == 404
        assert (await api.get(f"{on.url}/demo")).status_code == 200


async def test_a_reaction_clicked_on_one_page_shows_on_the_others(stores, server, browser) -> None:
    alice, bob = await open_demo(browser, server), await open_demo(browser, server)
    await sign_up(alice, "alice")
    await sign_up(bob, "bob")
    await alice.fill("#dm-username", "bob")
    await alice.press("#dm-username", "Enter")
    await send_message(alice, "Salut Bob")
    await expect(bob.locator("#conversation-list li")).to_have_text(re.compile("alice"))
    await bob.click("#conversation-list li button")
    await bob.click("#messages li .reaction")  # the +👍 of alice's message
    await expect(alice.locator("#messages li .reaction")).to_have_attribute("aria-label", "👍 1")
    await expect(bob.locator("#messages li .reaction.mine")).to_have_attribute("aria-label", "👍 1")
    await expect(alice.locator("#messages li")).to_have_text([re.compile("^alice: Salut Bob")])


async def test_a_post_with_a_link_shows_its_card_and_a_follower_reposts_it(stores, start_server, browser) -> None:
    server = start_server({"NUBO_LINK_PREVIEW_ALLOW_PRIVATE": "true"})  # the card's page is on 127.0.0.1
    async with PreviewPages().running() as pages:
        alice, bob = await open_demo(browser, server), await open_demo(browser, server)
        await sign_up(alice, "alice")
        await sign_up(bob, "bob")
        await bob.fill("#follow-username", "alice")
        await bob.press("#follow-username", "Enter")
        await expect(bob.locator("#follow-username")).to_have_value("")

        await alice.fill("#post-input", f"look {pages.url('/og')}")
        await alice.press("#post-input", "Enter")
        # The card is fetched after the post is written and arrives with `post.updated`.
        card = alice.locator("#feed li.post .preview")
        await expect(card.locator(".preview-title")).to_have_text("OG title")
        await expect(card.locator(".preview-description")).to_have_text("OG description")
        await expect(card).to_have_attribute("href", pages.url("/og"))
        image = card.locator("img")
        await expect(image).to_have_attribute("src", re.compile(r"^/previews/\d+/image$"))  # ours, not hot-linked
        await wait_until(alice, "document.querySelector('#feed .preview img').naturalWidth > 0")

        # Bob's feed got the post live (post.created); his repost button flips it and counts.
        repost = bob.locator("#feed li.post .repost")
        await expect(repost).to_have_text("⟲ 0")
        await repost.click()
        await expect(repost).to_have_attribute("aria-pressed", "true")
        await expect(repost).to_have_text("⟲ 1")
        await expect(bob.locator("#feed li.post .preview-title")).to_have_text("OG title")
        await bob.reload()  # the flag is the server's, not the page's memory
        await log_in(bob, "bob")
        await expect(bob.locator("#feed li.post .repost")).to_have_attribute("aria-pressed", "true")
        await bob.locator("#feed li.post .repost").click()
        await expect(bob.locator("#feed li.post .repost")).to_have_text("⟲ 0")
        await expect(bob.locator("#feed li.post .repost")).to_have_attribute("aria-pressed", "false")
