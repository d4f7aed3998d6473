"""One pagination scheme for every list: keyset cursors, opaque to clients.

A cursor encodes the sort key of the last row served; the next page continues strictly
after it, so rows inserted meanwhile never shift a page (no duplicates, no gaps).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pydantic import Field
from sanic_ext import openapi

from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.validation import Query, QueryInt
from nubo_backend.jsonutil import dumps, loads

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ROW_ID = 2**63 - 1  # PostgreSQL bigint: ids in URLs and cursors stay below it
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"  # what encode_cursor writes (unpadded URL-safe base64)


class PageQuery(Query):
    limit: QueryInt = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


def page_parameters(handler: Any) -> Any:
    """Route decorator documenting the `limit` and `cursor` query parameters of a list."""
    handler = openapi.parameter(
        "limit", openapi.Integer(minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT), "query"
    )(handler)
    return openapi.parameter(
        "cursor", openapi.String(description="`next_cursor` of the previous page", pattern=CURSOR_PATTERN), "query"
    )(handler)


def _invalid_cursor() -> NuboError:
    return NuboError(400, "invalid_cursor", "Invalid cursor")


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int = 1) -> list[Any] | None:
    """The sort key inside a cursor, or None for the first page; 400 if it was tampered with."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = loads(raw)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise _invalid_cursor()
    return key


def _row_id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_ROW_ID:
        raise _invalid_cursor()
    return value


def decode_id_cursor(cursor: str | None) -> int | None:
    """The row id a newest-first keyset cursor continues from (None for the first page)."""
    key = decode_cursor(cursor, 1)
    return None if key is None else _row_id(key[0])


def time_id_key(at: datetime, row_id: int) -> list[Any]:
    """The key of a cursor over (timestamp, id), read back by `decode_time_id_cursor`."""
    return [at.isoformat(), row_id]


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (timestamp, row id) a keyset cursor continues from (None for the first page)."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        at = datetime.fromisoformat(key[0])
    except (TypeError, ValueError):
        raise _invalid_cursor() from None
    if at.tzinfo is None:
        raise _invalid_cursor()
    return at, _row_id(key[1])


def page(items: list[Any], limit: int, key_of: Any) -> dict[str, Any]:
    """Build `{items, next_cursor}` from a query that fetched limit + 1 rows."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(key_of(items[-1])) if more and items else None
    return {"items": items, "next_cursor": next_cursor}


async def recent_documents(
    collection: Any,
    query: dict[str, Any],
    limit: int,
    cursor: list[Any] | None,
    ttl_days: int,
    public: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """A newest-first page of temporary MongoDB documents (keyed by ObjectId, `id` in public form).

    Documents older than ttl_days are left out: MongoDB's TTL monitor deletes them only
    periodically, so reads filter by created_at too.
    """
    query = {**query, "created_at": {"$gt": datetime.now(UTC) - timedelta(days=ttl_days)}}
    if cursor:
        try:
            query["_id"] = {"$lt": ObjectId(str(cursor[0]))}
        except InvalidId:
            raise _invalid_cursor() from None
    docs = await collection.find(query).sort("_id", -1).limit(limit + 1).to_list()
    return page([public(d) for d in docs], limit, lambda item: [item["id"]])
