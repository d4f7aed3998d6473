"""The one JSON codec (orjson) for responses, cache entries, events and frames."""

from __future__ import annotations

from typing import Any

import orjson
from sanic.response import HTTPResponse

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return HTTPResponse(dumps(body), status=status, headers=headers, content_type="application/json")
