"""The error answers of every operation in the OpenAPI document: one shape, {"error", "code"},
declared per status the edge can give, so that a client (or a contract tester) knows them;
and the limits that come from settings (validation.LengthSetting), known only at start-up.

This is the one module that reaches into sanic-ext's builders: the routes declare what is
particular to them with public decorators (nubo_backend.edge.replies), and this adds what every
route shares, after them and before the document is built."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sanic import Sanic
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import OperationStore, SpecificationBuilder

from nubo_backend.edge.validation import LengthSetting

# Answers that carry no body: a body schema (sanic-ext gives every response one) would make a
# client, or a contract tester, expect a Content-Type that the server rightly does not send.
BODILESS = (204, 304)


class ErrorBody(BaseModel):
    """Every error the API answers."""

    error: str
    code: str
    details: Any = None


def _statuses(operation: Any, handler: Any) -> dict[int, str]:
    statuses = {400: "Malformed request", 404: "Not found", 503: "A store is unavailable, retry later"}
    if getattr(handler, "budget", None):  # auth.budgets.budgeted
        statuses[429] = f"Over the caller's `{handler.budget}` budget (Retry-After)"
    if operation.security:  # the guard, required or optional: a bad token is refused
        statuses[401] = "Missing or invalid token"
    if getattr(operation, "requestBody", None) is not None:
        statuses |= {413: "Body too large", 415: "Body not JSON", 422: "Invalid input"}
    if operation.parameters:
        statuses[422] = "Invalid input"
    return statuses


def describe_error_responses(app: Sanic) -> None:
    @app.before_server_start(priority=999)  # after the routes' own descriptions, before the document
    async def declare_errors(app: Sanic) -> None:
        error = {"application/json": openapi.Component(ErrorBody)}
        for route in app.router.routes:
            if route.uri.startswith("/docs") or route.extra.websocket:
                continue
            operation = OperationStore()[route.handler]
            for status, description in _statuses(operation, route.handler).items():
                if status not in operation.responses:  # a route's own description of it wins
                    operation.response(status, error, description)
            operation.response("default", error, "Any other error")
            for status in BODILESS:
                if status in operation.responses:
                    operation.responses[status].fields.pop("content", None)
        _write_setting_lengths(app)


def _write_setting_lengths(app: Sanic) -> None:
    settings = app.ctx.settings
    for schema in SpecificationBuilder()._components.get("schemas", {}).values():
        for field in schema.get("properties", {}).values() if isinstance(schema, dict) else ():
            setting = field.pop(LengthSetting.KEY, None)
            if setting is not None:
                field["maxLength"] = getattr(settings, setting)
