"""Per-account budgets on writes and expensive reads: one route decorator, one table.

Each budgeted route spends one from its caller's budget of that name (per account; per
address when signed out) in a fixed window; past it, 429 `rate_limited` with Retry-After.
The figures are generous for a person and small for a script; NUBO_WRITE_BUDGETS overrides
any of them (`post=5/60,search=0/60`, 0: unlimited). docs/security.md lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from sanic import Request

from nubo_backend.auth import ratelimit
from nubo_backend.edge.client_ip import client_ip
from nubo_backend.settings import Settings


@dataclass(frozen=True)
class Budget:
    limit: int  # calls per window
    window: int  # seconds


# What each budget covers is the routes that name it (@budgeted("...")).
BUDGETS: dict[str, Budget] = {
    "post": Budget(30, 3600),  # POST /posts, PATCH /posts/{id}
    "comment": Budget(120, 3600),  # POST /posts/{id}/comments, PATCH /comments/{id}
    "like": Budget(300, 3600),  # PUT and DELETE /posts/{id}/like
    "message": Budget(60, 60),  # POST /conversations/{id}/messages, PATCH /messages/{id}
    "follow": Budget(100, 3600),  # POST and DELETE /users/{id}/follow
    "conversation": Budget(30, 3600),  # POST /conversations, POST /conversations/{id}/members
    "search": Budget(60, 60),  # GET /search/users, GET /search/posts
}

Handler = Callable[..., Awaitable[Any]]


def budget_of(settings: Settings, name: str) -> Budget:
    default = BUDGETS[name]
    return Budget(*settings.write_budget_overrides.get(name, (default.limit, default.window)))


async def spend(request: Request, name: str) -> None:
    """Spend one from the caller's budget `name`; 429 with Retry-After when it is spent."""
    budget = budget_of(request.app.ctx.settings, name)
    principal = getattr(request.ctx, "principal", None)
    who = (ratelimit.Bucket("account", str(principal.user_id), budget.limit) if principal is not None
           else ratelimit.Bucket("address", ratelimit.address_key(client_ip(request)), budget.limit))
    stores = request.app.ctx.stores
    await ratelimit.charge(stores.redis, stores.keys, f"budget:{name}", [who], budget.window)


def budgeted(name: str) -> Callable[[Handler], Handler]:
    """Route decorator, placed below the auth guard: each call spends one from budget `name`."""
    if name not in BUDGETS:
        raise ValueError(f"no budget named {name!r}")

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def spending(request: Request, *args: Any, **kwargs: Any) -> Any:
            await spend(request, name)
            return await handler(request, *args, **kwargs)

        # Read by openapi_errors, which documents the 429 on the route (a description made
        # here, under the guard, would describe a function the router never sees).
        spending.budget = name  # type: ignore[attr-defined]
        return spending

    return decorate
