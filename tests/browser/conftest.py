"""The demo page in a real browser: Debian's chromium, driven by Playwright (which never
downloads a browser here: it is pointed at /usr/bin/chromium). scripts/test installs it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support import ROOT

SCREENSHOTS = ROOT / "docs/img"
TIMEOUT_MS = 15_000  # every wait on the page is bounded


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), headless=True,
                                          args=["--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        await browser.close()


@pytest.fixture
def screenshot(tmp_path: Path):
    """`await screenshot(page, name)`: into docs/img/ with NUBO_SCREENSHOTS=1, else tmp_path."""
    target = SCREENSHOTS if os.environ.get("NUBO_SCREENSHOTS") else tmp_path

    async def take(page, name: str) -> Path:
        path = target / f"demo-{name}.png"
        await page.screenshot(path=str(path))
        with Image.open(path) as shot:  # 64 colours: a few dozen KB to commit, still sharp text
            shot.convert("RGB").quantize(64).save(path, optimize=True)
        return path

    return take
