"""`Nubo`: one logged-in user's client: REST methods for every route, tokens kept fresh, and
the real-time stream (`events()`, `send_message()`), which lives in realtime.py."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from nubo_backend.client.errors import NuboError, SecondFactorRequired, SessionRevoked, Unauthorized, error_for_response
from nubo_backend.client.frames import Ack, Command, Frame
from nubo_backend.client.models import (
    Account,
    Comment,
    Conversation,
    Media,
    Message,
    Notification,
    Page,
    Post,
    Profile,
    PushDevice,
    PushSubscription,
    Reaction,
    Session,
    Tokens,
    User,
    Version,
    build,
    page,
)
from nubo_backend.client.realtime import Realtime


def token_expiry(access_token: str) -> tuple[float, float]:
    """(iat, exp) of a JWT, read without verifying it (the server does that)."""
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims.get("iat", 0)), float(claims["exp"])


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process and shared by every client:
    building one loads the CA bundle (about 18 ms of CPU, which made each `Nubo` cost that
    much), and a context is safe to share between connections."""
    return httpx.create_ssl_context()


def _query(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class Nubo:
    """A client for one user. Make it with `await Nubo.login(url, username, password)`.

    `urls` are the instances to use, the first preferred: a request or a socket that cannot
    reach one goes on with the next. Access tokens are refreshed before they expire (and
    once more if the server says one is invalid), one refresh at a time.

    `on_response(method, path, status)` is called with every REST answer, the client's own
    refreshes and logins included: for metrics or logs (the fault suite counts statuses
    with it), since methods return typed objects and raise typed errors, not responses.
    """

    def __init__(self, urls: str | Sequence[str], tokens: Tokens, *, timeout: float = 10.0,
                 user: User | None = None, on_response: Callable[[str, str, int], None] | None = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.tokens = tokens
        self.user = user or tokens.user
        self.on_response = on_response
        self._current = 0
        self._http = httpx.AsyncClient(timeout=timeout, verify=_tls_context())
        self._refresh_lock = asyncio.Lock()
        self.realtime = Realtime(self)

    # --- making one ------------------------------------------------------------------

    @classmethod
    async def login(cls, urls: str | Sequence[str], username: str, password: str, *, code: str | None = None,
                    **kwargs: Any) -> Nubo:
        """Log in with a username (or an e-mail, if it contains `@`). With two-factor sign-in on,
        `code` (from the app, or a recovery code) finishes it; without one, SecondFactorRequired."""
        field = "email" if "@" in username else "username"
        try:
            return await cls._authenticate(urls, "/login", {field: username, "password": password}, **kwargs)
        except SecondFactorRequired as needed:
            if code is None:
                raise
            return await cls.finish_login(urls, needed.mfa_token, code, **kwargs)

    @classmethod
    async def finish_login(cls, urls: str | Sequence[str], mfa_token: str, code: str, **kwargs: Any) -> Nubo:
        """The second step of a login that raised SecondFactorRequired."""
        return await cls._authenticate(urls, "/login/2fa", {"mfa_token": mfa_token, "code": code}, **kwargs)

    @classmethod
    async def signup(cls, urls: str | Sequence[str], username: str, email: str, password: str,
                     **kwargs: Any) -> Nubo:
        body = {"username": username, "email": email, "password": password}
        return await cls._authenticate(urls, "/signup", body, **kwargs)

    @classmethod
    async def _authenticate(cls, urls: str | Sequence[str], path: str, body: dict[str, Any], **kwargs: Any) -> Nubo:
        client = cls(urls, Tokens("", ""), **kwargs)
        try:
            answer = await client._request("POST", path, json=body, auth=False)
            if answer.get("mfa_required"):
                raise SecondFactorRequired(answer["mfa_token"], answer["expires_in"])
        except BaseException:
            await client.aclose()
            raise
        client.tokens = build(Tokens, answer)
        client.user = client.tokens.user
        return client

    async def log_in_again(self, password: str) -> None:
        """After `SessionRevoked`: a new session for the same user, on this client. The
        stream goes on where it stopped: the next `events()` resumes after the last event it
        yielded, with the same `realtime.stats`."""
        if self.user is None:
            raise ValueError("log_in_again needs to know the user: make the client with login() or signup()")
        body = {"username": self.user.username, "password": password}
        answer = await self._request("POST", "/login", json=body, auth=False)
        self.tokens = build(Tokens, answer)
        self.user = self.tokens.user or self.user

    @classmethod
    def with_token(cls, urls: str | Sequence[str], access_token: str, refresh_token: str = "",
                   **kwargs: Any) -> Nubo:
        """A client on tokens obtained elsewhere (`nubo token`); without a refresh token it
        cannot refresh, so it lasts as long as the access token."""
        return cls(urls, Tokens(access_token, refresh_token), **kwargs)

    async def __aenter__(self) -> Nubo:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.realtime.stop()
        await self._http.aclose()

    # --- tokens ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The instance in use."""
        return self.urls[self._current % len(self.urls)]

    def next_url(self) -> str:
        """Move on to the next instance (after one failed)."""
        self._current = (self._current + 1) % len(self.urls)
        return self.url

    def token_expires_at(self) -> float:
        return token_expiry(self.tokens.access_token)[1]

    def _needs_refresh(self) -> bool:
        if not self.tokens.refresh_token or not self.tokens.access_token:
            return False
        issued, expires = token_expiry(self.tokens.access_token)
        # The server warns sockets min(60 s, a quarter of the lifetime) before exp: refresh then.
        return expires - time.time() <= min(60.0, (expires - issued) / 4)

    async def refresh(self, *, unless_newer_than: str | None = None) -> Tokens:
        """Rotate the token pair (`POST /refresh`). Serialised: concurrent callers share one
        refresh (two refreshes with one token would revoke the session, see docs/auth.md)."""
        stale = unless_newer_than or self.tokens.access_token
        async with self._refresh_lock:
            if self.tokens.access_token != stale:  # someone refreshed while we waited
                return self.tokens
            if not self.tokens.refresh_token:
                raise Unauthorized("invalid_token", "no refresh token: log in again", 401)
            answer = await self._request("POST", "/refresh", json={"refresh_token": self.tokens.refresh_token},
                                         auth=False)
            self.tokens = build(Tokens, {**answer, "user": None})
            return self.tokens

    async def _fresh_token(self) -> str:
        if self._needs_refresh():
            await self.refresh()
        return self.tokens.access_token

    # --- transport -------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                       content: bytes | None = None, headers: dict[str, str] | None = None,
                       auth: bool = True, raw: bool = False) -> Any:
        headers = dict(headers or {})
        for attempt in range(2):
            if auth:
                headers["Authorization"] = f"Bearer {await self._fresh_token()}"
            response = await self._send(method, path, json=json, params=params, content=content, headers=headers)
            if self.on_response is not None:
                self.on_response(method, path, response.status_code)
            if response.status_code == 401 and auth and attempt == 0 and self.tokens.refresh_token:
                body = _json_or_none(response)
                if isinstance(body, dict) and body.get("code") == "invalid_token":
                    await self.refresh(unless_newer_than=headers["Authorization"][7:])
                    continue
            break
        if response.status_code >= 400:
            error = error_for_response(response.status_code, _json_or_none(response),
                                       retry_after=response.headers.get("Retry-After"))
            if error.code == "invalid_token" and auth and self.tokens.refresh_token:
                raise SessionRevoked(error.code, error.error, 401)
            raise error
        if raw:
            return response.content
        return None if response.status_code == 204 or not response.content else response.json()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # An instance that refuses the connection is skipped for the next (each tried once).
        # Only then: a request that reached a server may have been carried out, and a POST
        # sent again elsewhere could be done twice.
        for tried in range(len(self.urls)):
            try:
                return await self._http.request(method, self.url + path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if tried == len(self.urls) - 1:
                    raise
                self.next_url()
        raise AssertionError("unreachable")

    # --- real time -------------------------------------------------------------------

    def events(self, *, since: int | None = None) -> AsyncIterator[Frame]:
        """Everything the socket brings, typed (see realtime.Realtime.events)."""
        return self.realtime.events(since=since)

    async def send_message_live(self, conversation_id: int, body: str, *, client_id: str | None = None,
                                media_ids: list[int] | None = None) -> Ack:
        """Send a message over the socket (`message.send`) and wait for its ack; resent with
        the same client_id after a reconnect, so it is stored once."""
        return await self.realtime.send_message(conversation_id, body, client_id=client_id, media_ids=media_ids)

    async def send(self, command: Command) -> None:
        """Send a command over the socket (typing, read marker, ping...)."""
        await self.realtime.send(command)

    async def broadcast(self, line: str) -> None:
        """A broadcast line: to every connected client on every instance, this one included.
        Sent as is, so it must not start with `{` (that would be read as a command)."""
        if line.lstrip().startswith("{"):
            raise ValueError("a broadcast line must not start with '{'")
        await self.realtime.send_text(line)

    # --- accounts and sessions -------------------------------------------------------

    async def me(self) -> Account:
        return build(Account, await self._request("GET", "/me"))

    async def update_me(self, **fields: Any) -> Account:
        """`display_name`, `bio`, `avatar_url` (None removes it)."""
        return build(Account, await self._request("PATCH", "/me", json=fields))

    async def change_password(self, current_password: str, new_password: str) -> None:
        await self._request("POST", "/me/password",
                            json={"current_password": current_password, "new_password": new_password})

    async def delete_account(self, password: str) -> None:
        await self._request("DELETE", "/me", json={"password": password})

    # --- getting back in (docs/accounts.md) -------------------------------------------

    @classmethod
    async def _public(cls, urls: str | Sequence[str], path: str, body: dict[str, Any]) -> Any:
        async with cls(urls, Tokens("", "")) as client:
            return await client._request("POST", path, json=body, auth=False)

    @classmethod
    async def forgot_password(cls, urls: str | Sequence[str], email: str) -> None:
        """Ask for a reset link by mail (answered the same whether an account has the address)."""
        await cls._public(urls, "/password/forgot", {"email": email})

    @classmethod
    async def reset_password(cls, urls: str | Sequence[str], token: str, password: str) -> int:
        """Set a new password with a reset link's token; every session is revoked (returned: how many)."""
        answer = await cls._public(urls, "/password/reset", {"token": token, "password": password})
        return int(answer["revoked_sessions"])

    @classmethod
    async def verify_email(cls, urls: str | Sequence[str], token: str) -> str:
        """Take a verification (or e-mail change) link's token; returns the address now verified."""
        return str((await cls._public(urls, "/email/verify", {"token": token}))["email"])

    async def resend_verification(self) -> None:
        await self._request("POST", "/email/verification")

    async def change_email(self, email: str, password: str) -> None:
        """Mail a confirmation to `email`; the account moves there once its link is taken."""
        await self._request("POST", "/me/email", json={"email": email, "password": password})

    async def start_totp(self) -> dict[str, str]:
        """`{"secret", "otpauth_uri"}` to add to an authenticator app; then confirm_totp."""
        return dict(await self._request("POST", "/me/2fa/totp"))

    async def confirm_totp(self, code: str) -> list[str]:
        """Turn two-factor sign-in on with a first code; returns the 10 recovery codes."""
        return list((await self._request("POST", "/me/2fa/totp/confirm", json={"code": code}))["recovery_codes"])

    async def disable_totp(self, password: str, code: str) -> None:
        await self._request("DELETE", "/me/2fa/totp", json={"password": password, "code": code})

    async def new_recovery_codes(self, password: str, code: str) -> list[str]:
        answer = await self._request("POST", "/me/2fa/recovery-codes", json={"password": password, "code": code})
        return list(answer["recovery_codes"])

    async def logout(self) -> None:
        await self.realtime.stop()
        await self._request("POST", "/logout")

    async def logout_all(self) -> None:
        await self._request("POST", "/logout/all")

    async def sessions(self) -> list[Session]:
        answer = await self._request("GET", "/sessions")
        items = answer["items"] if isinstance(answer, dict) else answer
        return [build(Session, s) for s in items]

    async def revoke_session(self, session_id: str) -> None:
        await self._request("DELETE", f"/sessions/{session_id}")

    # --- people ----------------------------------------------------------------------

    async def profile(self, user: int | str) -> Profile:
        """A profile by id or username."""
        return build(Profile, await self._request("GET", f"/users/{user}"))

    async def follow(self, user_id: int) -> Profile:
        return build(Profile, await self._request("POST", f"/users/{user_id}/follow"))

    async def unfollow(self, user_id: int) -> Profile:
        return build(Profile, await self._request("DELETE", f"/users/{user_id}/follow"))

    async def followers(self, user_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return page(User, await self._request("GET", f"/users/{user_id}/followers",
                                              params=_query(limit=limit, cursor=cursor)))

    async def following(self, user_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return page(User, await self._request("GET", f"/users/{user_id}/following",
                                              params=_query(limit=limit, cursor=cursor)))

    async def user_posts(self, user_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", f"/users/{user_id}/posts",
                                              params=_query(limit=limit, cursor=cursor)))

    # --- posts, comments, likes, feed ------------------------------------------------

    async def create_post(self, body: str, *, media_ids: list[int] | None = None,
                          quote_of: int | None = None) -> Post:
        payload: dict[str, Any] = {"body": body, "media_ids": media_ids or []}
        if quote_of is not None:
            payload["quote_of"] = quote_of
        return build(Post, await self._request("POST", "/posts", json=payload))

    async def posts(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", "/posts", params=_query(limit=limit, cursor=cursor)))

    async def post(self, post_id: int) -> Post:
        return build(Post, await self._request("GET", f"/posts/{post_id}"))

    async def edit_post(self, post_id: int, body: str) -> Post:
        return build(Post, await self._request("PATCH", f"/posts/{post_id}", json={"body": body}))

    async def delete_post(self, post_id: int) -> None:
        await self._request("DELETE", f"/posts/{post_id}")

    async def like(self, post_id: int) -> dict[str, Any]:
        """`{like_count, liked_by_me}`."""
        return await self._request("PUT", f"/posts/{post_id}/like")

    async def unlike(self, post_id: int) -> dict[str, Any]:
        return await self._request("DELETE", f"/posts/{post_id}/like")

    async def likers(self, post_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return page(User, await self._request("GET", f"/posts/{post_id}/likes",
                                              params=_query(limit=limit, cursor=cursor)))

    async def repost(self, post_id: int) -> Post:
        return build(Post, await self._request("PUT", f"/posts/{post_id}/repost"))

    async def unrepost(self, post_id: int) -> Post:
        return build(Post, await self._request("DELETE", f"/posts/{post_id}/repost"))

    async def reposters(self, post_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return page(User, await self._request("GET", f"/posts/{post_id}/reposts",
                                              params=_query(limit=limit, cursor=cursor)))

    async def bookmark(self, post_id: int) -> Post:
        return build(Post, await self._request("PUT", f"/posts/{post_id}/bookmark"))

    async def unbookmark(self, post_id: int) -> Post:
        return build(Post, await self._request("DELETE", f"/posts/{post_id}/bookmark"))

    async def bookmarks(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", "/me/bookmarks", params=_query(limit=limit, cursor=cursor)))

    async def post_history(self, post_id: int, *, limit: int | None = None,
                           cursor: str | None = None) -> Page[Version]:
        return page(Version, await self._request("GET", f"/posts/{post_id}/history",
                                                 params=_query(limit=limit, cursor=cursor)))

    async def feed(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", "/feed", params=_query(limit=limit, cursor=cursor)))

    async def comment(self, post_id: int, body: str) -> Comment:
        return build(Comment, await self._request("POST", f"/posts/{post_id}/comments", json={"body": body}))

    async def comments(self, post_id: int, *, limit: int | None = None, cursor: str | None = None) -> Page[Comment]:
        return page(Comment, await self._request("GET", f"/posts/{post_id}/comments",
                                                 params=_query(limit=limit, cursor=cursor)))

    async def edit_comment(self, comment_id: int, body: str) -> Comment:
        return build(Comment, await self._request("PATCH", f"/comments/{comment_id}", json={"body": body}))

    async def delete_comment(self, comment_id: int) -> None:
        await self._request("DELETE", f"/comments/{comment_id}")

    # --- conversations and messages --------------------------------------------------

    async def open_direct(self, user_id: int) -> Conversation:
        """The direct conversation with user_id (created the first time)."""
        return build(Conversation, await self._request("POST", "/conversations", json={"user_id": user_id}))

    async def create_group(self, title: str, member_ids: list[int]) -> Conversation:
        body = {"title": title, "member_ids": member_ids}
        return build(Conversation, await self._request("POST", "/conversations", json=body))

    async def conversations(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Conversation]:
        return page(Conversation, await self._request("GET", "/conversations",
                                                      params=_query(limit=limit, cursor=cursor)))

    async def conversation(self, conversation_id: int) -> Conversation:
        return build(Conversation, await self._request("GET", f"/conversations/{conversation_id}"))

    async def add_members(self, conversation_id: int, user_ids: list[int]) -> Conversation:
        answer = await self._request("POST", f"/conversations/{conversation_id}/members", json={"user_ids": user_ids})
        return build(Conversation, answer)

    async def remove_member(self, conversation_id: int, user_id: int) -> None:
        await self._request("DELETE", f"/conversations/{conversation_id}/members/{user_id}")

    async def leave(self, conversation_id: int) -> None:
        await self._request("POST", f"/conversations/{conversation_id}/leave")

    async def messages(self, conversation_id: int, *, limit: int | None = None,
                       cursor: str | None = None) -> Page[Message]:
        return page(Message, await self._request("GET", f"/conversations/{conversation_id}/messages",
                                                 params=_query(limit=limit, cursor=cursor)))

    async def post_message(self, conversation_id: int, body: str, *, client_id: str | None = None,
                           media_ids: list[int] | None = None) -> Message:
        """Send a message over REST (`send_message_live` does it over the socket)."""
        payload = {"body": body, "client_id": client_id, "media_ids": media_ids or []}
        answer = await self._request("POST", f"/conversations/{conversation_id}/messages",
                                     json={k: v for k, v in payload.items() if v is not None})
        return build(Message, answer)

    async def mark_read(self, conversation_id: int, message_id: int) -> dict[str, Any]:
        return await self._request("POST", f"/conversations/{conversation_id}/read", json={"message_id": message_id})

    async def edit_message(self, message_id: int, body: str) -> Message:
        return build(Message, await self._request("PATCH", f"/messages/{message_id}", json={"body": body}))

    async def delete_message(self, message_id: int) -> Message:
        return build(Message, await self._request("DELETE", f"/messages/{message_id}"))

    async def message_history(self, message_id: int, *, limit: int | None = None,
                              cursor: str | None = None) -> Page[Version]:
        return page(Version, await self._request("GET", f"/messages/{message_id}/history",
                                                 params=_query(limit=limit, cursor=cursor)))

    async def react(self, message_id: int, emoji: str) -> list[Reaction]:
        """Add a reaction (one emoji); the message's reactions as the caller sees them."""
        reply = await self._request("PUT", f"/messages/{message_id}/reactions/{quote(emoji, safe='')}")
        return [build(Reaction, r) for r in reply["reactions"]]

    async def unreact(self, message_id: int, emoji: str) -> list[Reaction]:
        reply = await self._request("DELETE", f"/messages/{message_id}/reactions/{quote(emoji, safe='')}")
        return [build(Reaction, r) for r in reply["reactions"]]

    # --- notifications, broadcast lines ----------------------------------------------

    async def notifications(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Notification]:
        return page(Notification, await self._request("GET", "/notifications",
                                                      params=_query(limit=limit, cursor=cursor)))

    async def mark_notifications_read(self, ids: list[str] | None = None) -> Any:
        """The given notifications, or all of them when ids is None."""
        return await self._request("POST", "/notifications/read", json={} if ids is None else {"ids": ids})

    async def broadcasts(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Any]:
        """The last broadcast lines, newest first."""
        return page(dict, await self._request("GET", "/broadcast", params=_query(limit=limit, cursor=cursor)))

    # --- push notifications ----------------------------------------------------------

    async def push_subscribe(self, endpoint: str, p256dh: str, auth: str, *,
                             alerts: dict[str, bool] | None = None, policy: str | None = None) -> PushSubscription:
        """Subscribe this session to Web Push (replacing its subscription): the browser's
        PushSubscription endpoint and keys; alerts turn kinds off (`{"like": False}`)."""
        data: dict[str, Any] = {"alerts": alerts or {}}
        if policy is not None:
            data["policy"] = policy
        body = {"subscription": {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}, "data": data}
        return build(PushSubscription, await self._request("POST", "/push/subscription", json=body))

    async def push_subscription(self) -> PushSubscription:
        return build(PushSubscription, await self._request("GET", "/push/subscription"))

    async def update_push_subscription(self, *, alerts: dict[str, bool] | None = None,
                                       policy: str | None = None) -> PushSubscription:
        data: dict[str, Any] = {"alerts": alerts or {}}
        if policy is not None:
            data["policy"] = policy
        return build(PushSubscription, await self._request("PUT", "/push/subscription", json={"data": data}))

    async def push_unsubscribe(self) -> None:
        await self._request("DELETE", "/push/subscription")

    async def register_push_device(self, platform: str, token: str, *, alerts: dict[str, bool] | None = None,
                                   policy: str = "all") -> PushDevice:
        """An APNs (`apns`) or FCM (`fcm`) device token for this session."""
        body = {"platform": platform, "token": token, "alerts": alerts or {}, "policy": policy}
        return build(PushDevice, await self._request("POST", "/push/devices", json=body))

    async def unregister_push_device(self, platform: str, token: str) -> None:
        await self._request("DELETE", "/push/devices", params={"platform": platform, "token": token})

    # --- media -----------------------------------------------------------------------

    async def upload_media(self, data: bytes, content_type: str) -> Media:
        """Upload a photo (JPEG, PNG, WebP, GIF); attach its id to a post or message."""
        answer = await self._request("POST", "/media", content=data, headers={"Content-Type": content_type})
        return build(Media, answer)

    async def media_bytes(self, media_id: int, *, thumbnail: bool = False) -> bytes:
        path = f"/media/{media_id}/thumbnail" if thumbnail else f"/media/{media_id}"
        return await self._request("GET", path, raw=True)

    # --- search, tags, reports -------------------------------------------------------

    async def search_users(self, q: str, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return page(User, await self._request("GET", "/search/users", params=_query(q=q, limit=limit, cursor=cursor)))

    async def search_posts(self, q: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", "/search/posts", params=_query(q=q, limit=limit, cursor=cursor)))

    async def trending_tags(self) -> Any:
        return await self._request("GET", "/tags/trending")

    async def tag_posts(self, tag: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return page(Post, await self._request("GET", f"/tags/{tag}/posts", params=_query(limit=limit, cursor=cursor)))

    async def report(self, target_type: str, target_id: int, reason: str, note: str = "") -> dict[str, Any]:
        body = {"target_type": target_type, "target_id": target_id, "reason": reason, "note": note}
        return await self._request("POST", "/reports", json=body)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


__all__ = ["Nubo", "NuboError", "token_expiry"]
