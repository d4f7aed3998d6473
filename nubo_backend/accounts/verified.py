"""NUBO_EMAIL_VERIFICATION=required: accounts whose address is not verified may read, not write."""

from __future__ import annotations

from nubo_backend.edge.errors import NuboError
from nubo_backend.stores import Stores


async def require_verified_email(stores: Stores, user_id: int) -> None:
    """403 `email_not_verified` when verification is required and user_id has not verified
    their address; nothing (and no query) when it is optional. Called before a post, a
    comment or a message is written."""
    if stores.settings.email_verification != "required":
        return
    async with stores.pg.acquire() as conn:
        verified = await stores.sql.accounts.email_verified(conn, user_id=user_id)
    if not verified:
        raise NuboError(403, "email_not_verified",
                        "Verify your e-mail address first (POST /email/verification sends a new link)")
