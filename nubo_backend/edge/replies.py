"""What the API answers, as published in the OpenAPI document: a base for the domains' reply
models and the decorator that declares one on a route. The models document and are checked by
the contract test (tests/hostile/test_contract.py); handlers still build plain dicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sanic_ext import openapi

from nubo_backend.edge.openapi_errors import ErrorBody
from nubo_backend.edge.validation import OpenAPI30Schema


class Reply(BaseModel):
    """Base of reply models: every declared field is sent, extra ones may be added later."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("schema_generator", OpenAPI30Schema)
        kwargs.setdefault("mode", "serialization")
        return super().model_json_schema(*args, **kwargs)


def returns(status: int, model: type[BaseModel], description: str = "") -> Any:
    """Route decorator: the answer given with `status`, a JSON body of `model`'s shape."""
    return openapi.response(status, {"application/json": openapi.Component(model)}, description or model.__doc__)


def refusal(status: int, description: str) -> Any:
    """Route decorator: an error answer particular to this route (openapi_errors adds the shared ones)."""
    return openapi.response(status, {"application/json": openapi.Component(ErrorBody)}, description)


def no_content(description: str = "Done, nothing to say") -> Any:
    """Route decorator: a 204 with no body."""
    return openapi.response(204, None, description)


class Page(Reply):
    """Fields every cursor page has besides its items."""

    next_cursor: str | None  # pass it as ?cursor= for the next page; null on the last

