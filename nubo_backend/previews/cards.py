"""A preview card from a page's head: OpenGraph, then Twitter card, then plain HTML metadata."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

MAX_TITLE = 300
MAX_DESCRIPTION = 1000


class _HeadParser(HTMLParser):
    """Collects <meta property|name=... content=...> and <title> until the body starts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: list[str] = []
        self.in_title = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.done = True
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            values = dict(attrs)
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if key and content is not None:
                self.meta.setdefault(key, content.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.in_title and not self.done:
            self.title.append(data)


def _clip(text: str | None, limit: int) -> str | None:
    text = " ".join(text.split()) if text else ""
    return text[:limit] or None


def decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def parse_card(html: str, page_url: str) -> dict[str, Any] | None:
    """`{url, title, description, image_url}` (image_url: the page's image, absolute, to be
    fetched and re-encoded; http(s) only), or None when the page says nothing worth a card."""
    parser = _HeadParser()
    # Fed in slices so that a page with no </head> is not parsed to its end for nothing.
    for start in range(0, len(html), 16384):
        parser.feed(html[start:start + 16384])
        if parser.done:
            break
    meta = parser.meta

    def first(*keys: str) -> str | None:
        return next((meta[k] for k in keys if meta.get(k)), None)

    title = _clip(first("og:title", "twitter:title") or "".join(parser.title), MAX_TITLE)
    description = _clip(first("og:description", "twitter:description", "description"), MAX_DESCRIPTION)
    image = first("og:image:secure_url", "og:image", "og:image:url", "twitter:image", "twitter:image:src")
    image_url = urljoin(page_url, image) if image else None
    if image_url and urlsplit(image_url).scheme not in ("http", "https"):
        image_url = None
    if title is None and description is None:
        return None
    return {"url": page_url, "title": title, "description": description, "image_url": image_url}
