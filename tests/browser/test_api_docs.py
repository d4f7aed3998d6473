"""/docs in a real browser with no way out of this machine: Swagger UI comes from the server."""

from __future__ import annotations

from tests.browser.conftest import TIMEOUT_MS
from tests.support import ServerProcess


async def test_the_api_docs_render_without_internet(browser, server: ServerProcess) -> None:
    page = await browser.new_page()
    asked_elsewhere: list[str] = []

    async def only_this_server(route) -> None:
        if route.request.url.startswith(server.url):
            await route.continue_()
        else:  # a CDN, a font service: as on a network without internet
            asked_elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_server)
    await page.goto(f"{server.url}/docs", timeout=TIMEOUT_MS)
    title = page.locator(".swagger-ui .info .title")
    await title.wait_for(timeout=TIMEOUT_MS)
    assert "Nubo API" in await title.inner_text()
    assert await page.locator(".opblock").count() > 20  # the routes are listed
    assert asked_elsewhere == []
    await page.close()
