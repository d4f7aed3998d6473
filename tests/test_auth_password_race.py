"""Issue #26, item 2: a login that checked the old password while a change committed gets no
session that outlives the change."""

from __future__ import annotations

import asyncio

import pytest

from nubo_backend.auth import service
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.schemas import LoginBody, PasswordChange
from nubo_backend.edge.errors import NuboError
from nubo_backend.stores import Stores
from tests.factories import PASSWORD, make_user


class HeldAfterCheck(Passwords):
    """Real argon2; a login's check (the one made without a session) is held once done, until released."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.checked = asyncio.Event()
        self.release = asyncio.Event()

    async def verify(self, password_hash: str, password: str, *, who: str) -> bool:
        result = await super().verify(password_hash, password, who=who)
        if not self.checked.is_set():  # the login's, started first
            self.checked.set()
            await self.release.wait()
        return result


async def test_a_login_racing_a_password_change_keeps_no_session(stores: Stores) -> None:
    # The factory's hash parameters, so that the login does not rehash.
    cheap = stores.settings.replace(argon2_time_cost=1, argon2_memory_cost=8192)
    passwords = await HeldAfterCheck.open(cheap)
    try:
        gina = await make_user(stores, "gina")
        login = asyncio.create_task(service.login(
            stores, passwords, LoginBody(username="gina", password=PASSWORD), service.Client(ip="192.0.2.1")
        ))
        await asyncio.wait_for(passwords.checked.wait(), 10)  # the old password checked, no session yet
        change = PasswordChange(current_password=PASSWORD, new_password="the-new-password")
        await service.change_password(
            stores, passwords, gina.id, gina.session_id, change, service.Client(ip="192.0.2.2")
        )
        passwords.release.set()
        with pytest.raises(NuboError) as refused:
            await login
    finally:
        passwords.release.set()
        passwords.close()
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
    sessions = await stores.redis.smembers(stores.keys("user_sessions", gina.id))
    assert {s.decode() for s in sessions} == {gina.session_id}  # only the changer's own
