"""#tags in posts, as @mentions are: parsed from the body, stored with the post in its transaction.

Tags are folded as search folds text (case and accents removed), so "#Café",
"#CAFE" and "#cafe" are one tag, shown as `cafe`.
"""

from __future__ import annotations

import re
import unicodedata

import asyncpg

from nubo_backend.stores import Stores

MAX_TAG_LENGTH = 50
MAX_TAGS = 10  # per post: bounds the rows (and trending weight) one post can add
# A word after `#`, not inside a word or an entity (`&#39;`), up to MAX_TAG_LENGTH: a longer
# run is not a tag at all (ignored, not cut), and neither is a number alone (`#1`).
TAG = re.compile(rf"(?<![\w#&])#(\w{{1,{MAX_TAG_LENGTH}}})(?!\w)")


def fold_tag(text: str) -> str:
    """Case-folded, compatibility-decomposed, accents (combining marks) removed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tags_in(text: str) -> list[str]:
    """Distinct tags of a text, folded, in order of appearance, at most MAX_TAGS."""
    found = (fold_tag(m) for m in TAG.findall(unicodedata.normalize("NFC", text)))
    tags = dict.fromkeys(t for t in found if not t.isdigit() and len(t) <= MAX_TAG_LENGTH)
    return list(tags)[:MAX_TAGS]


async def store_post_tags(conn: asyncpg.Connection, stores: Stores, post_id: int, body: str,
                          *, replace: bool = False) -> list[str]:
    """Write the body's tags for a post (in the caller's transaction); returns them."""
    if replace:
        await stores.sql.tags.delete_post_tags(conn, post_id=post_id)
    tags = tags_in(body)
    if tags:
        await stores.sql.tags.insert_post_tags(conn, post_id=post_id, tags=tags)
    return tags
