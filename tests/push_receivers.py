"""Local push services speaking the documented protocols, for the push tests.

- `WebPushReceiver`: an RFC 8030 push service. It checks the RFC 8292 VAPID header (ES256
  signature by the key in `k=`, which must be the server's `server_key`; `aud` its own origin;
  `exp` in the future and within 24 hours; a `sub`), and decrypts the RFC 8291 aes128gcm body
  with the subscription's private key (http_ece), as a browser would.
- `APNsReceiver`: Apple's provider API on HTTP/2 (`POST /3/device/<token>`): checks the ES256
  provider token (kid, iss, iat) and the topic; 410 `Unregistered` for tokens it was told are gone.
- `FCMReceiver`: an OAuth2 token endpoint checking the RS256 JWT assertion (RFC 7523) and FCM
  HTTP v1 `messages:send` checking the bearer token; 404 `UNREGISTERED` for gone tokens.

Each answers from a script first (`script`: statuses and headers to give, `hang`: hold
requests unanswered until released), then normally. All serve on 127.0.0.1 with hypercorn
inside the test's event loop, started and stopped by the tests (`restart` keeps the port).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

from nubo_backend.push.vapid import b64url, b64url_decode
from tests.polling import eventually
from tests.support import free_port

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass
class Received:
    """A push the receiver accepted (or refused: `error` says why)."""

    path: str
    headers: dict[str, str]
    payload: dict[str, Any] | None = None
    error: str = ""
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []  # answers to give first, in order
        self.hang = False  # hold requests until `release()`
        self.delay = 0.0  # seconds every answer takes (a slow push service)
        self._released = asyncio.Event()
        self._shutdown: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.requests = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Receiver:
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.graceful_timeout = 0.5
        config.accesslog = None
        config.errorlog = None
        self._shutdown = asyncio.Event()
        self._task = asyncio.create_task(serve(self._app, config, shutdown_trigger=self._shutdown.wait))
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return self
            except OSError:
                if time.monotonic() > deadline or self._task.done():
                    raise
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.release()
        if self._shutdown is not None and self._task is not None:
            self._shutdown.set()
            await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), 10)
            self._task = None

    def release(self) -> None:
        self.hang = False
        self._released.set()
        self._released = asyncio.Event()

    def reset(self) -> None:
        self.received.clear()
        self.errors.clear()
        self.script.clear()
        self.requests = 0

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests += 1
        if self.hang:
            await self._released.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            status, extra, content = self.script.pop(0)
        else:
            status, extra, content = await self.handle(scope, headers, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in extra.items()]})
        await send({"type": "http.response.body", "body": content})

    async def handle(self, scope: dict[str, Any], headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def refuse(self, path: str, headers: dict[str, str], error: str, status: int = 400
               ) -> tuple[int, dict[str, str], bytes]:
        self.errors.append(error)
        self.received.append(Received(path, headers, error=error))
        return status, {"content-type": "application/json"}, json.dumps({"error": error}).encode()

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        async def enough() -> bool:
            return len(self.received) >= count

        await eventually(enough, True, within)
        return self.received


@dataclass
class UserAgent:
    """A browser's side of one subscription: its key pair and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint)
        return b64url(raw)

    def json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}


class WebPushReceiver(Receiver):
    def __init__(self) -> None:
        super().__init__()
        self.server_key = ""  # the `server_key` nubo answered; the VAPID `k=` must be it
        self.agents: dict[str, UserAgent] = {}

    def new_subscription(self) -> UserAgent:
        name = secrets.token_hex(8)
        agent = UserAgent(f"{self.origin}/wp/{name}", ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.agents[name] = agent
        return agent

    async def handle(self, scope: dict[str, Any], headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
        path = scope["path"]
        agent = self.agents.get(path.rsplit("/", 1)[-1])
        if scope["method"] != "POST" or agent is None:
            return 404, {}, b""
        problem = self._check_vapid(headers.get("authorization", ""))
        if problem:
            return self.refuse(path, headers, problem, 403)
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return self.refuse(path, headers, "content-encoding or TTL missing")
        try:
            plain = http_ece.decrypt(body, private_key=agent.private_key, auth_secret=agent.auth, version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return self.refuse(path, headers, f"decrypt failed: {exc}")
        self.received.append(Received(path, headers, json.loads(plain)))
        return 201, {"location": f"{self.origin}/messages/{secrets.token_hex(4)}"}, b""

    def _check_vapid(self, authorization: str) -> str:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return f"not a vapid authorization: {authorization[:40]!r}"
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        token, key = fields.get("t", ""), fields.get("k", "")
        if self.server_key and key != self.server_key:
            return "k= is not the server_key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        try:
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["aud", "exp", "sub"]})
        except jwt.PyJWTError as exc:
            return f"VAPID JWT refused: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "VAPID exp more than 24 hours ahead"
        return ""


class APNsReceiver(Receiver):
    def __init__(self) -> None:
        super().__init__()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = "ABC123DEFG"
        self.team_id = "TEAM123456"
        self.topic = "app.nubo.test"
        self.unregistered: set[str] = set()

    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    async def handle(self, scope: dict[str, Any], headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
        path = scope["path"]
        if scope["http_version"] != "2":
            return self.refuse(path, headers, f"HTTP/{scope['http_version']}, APNs speaks HTTP/2 only")
        if not path.startswith("/3/device/"):
            return 404, {}, b""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                raise jwt.InvalidTokenError("kid")
            claims = jwt.decode(token, self.key.public_key(), algorithms=["ES256"], options={"require": ["iat"]})
        except jwt.PyJWTError as exc:
            return self._reason(403, "InvalidProviderToken", str(exc))
        if scheme != "bearer" or claims.get("iss") != self.team_id or claims["iat"] < time.time() - 3600:
            return self._reason(403, "InvalidProviderToken", "iss or iat")
        if headers.get("apns-topic") != self.topic:
            return self._reason(400, "TopicDisallowed", "topic")
        device = path.rsplit("/", 1)[-1]
        if device in self.unregistered:
            return 410, {"content-type": "application/json"}, json.dumps(
                {"reason": "Unregistered", "timestamp": int(time.time() * 1000)}).encode()
        self.received.append(Received(path, headers, json.loads(body)))
        return 200, {"apns-id": "EC1BF194-B3B2-424A-89A9-5A918A6E6B5A"}, b""

    def _reason(self, status: int, reason: str, error: str) -> tuple[int, dict[str, str], bytes]:
        self.errors.append(error)
        return status, {"content-type": "application/json"}, json.dumps({"reason": reason}).encode()


class FCMReceiver(Receiver):
    def __init__(self) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.project_id = "nubo-test"
        self.client_email = "push@nubo-test.iam.gserviceaccount.com"
        self.tokens: set[str] = set()
        self.unregistered: set[str] = set()
        self.token_requests = 0

    def service_account(self) -> dict[str, Any]:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.project_id, "private_key_id": "k1",
                "private_key": pem, "client_email": self.client_email, "token_uri": f"{self.origin}/token"}

    async def handle(self, scope: dict[str, Any], headers: dict[str, str], body: bytes
                     ) -> tuple[int, dict[str, str], bytes]:
        path = scope["path"]
        if path == "/token":
            return self._token(headers, body)
        if path != f"/v1/projects/{self.project_id}/messages:send":
            return 404, {}, b""
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return self._error(401, "UNAUTHENTICATED", None)
        message = json.loads(body)["message"]
        if message["token"] in self.unregistered:
            return self._error(404, "NOT_FOUND", "UNREGISTERED")
        self.received.append(Received(path, headers, message))
        return 200, {"content-type": "application/json"}, json.dumps(
            {"name": f"projects/{self.project_id}/messages/{secrets.token_hex(6)}"}).encode()

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.refuse("/token", headers, "grant_type")
        try:
            claims = jwt.decode(form.get("assertion", ""), self.key.public_key(), algorithms=["RS256"],
                                audience=f"{self.origin}/token", options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError as exc:
            return self.refuse("/token", headers, f"assertion refused: {exc}")
        if claims["iss"] != self.client_email or claims.get("scope") != FCM_SCOPE:
            return self.refuse("/token", headers, "iss or scope")
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return 200, {"content-type": "application/json"}, json.dumps(
            {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).encode()

    def _error(self, status: int, name: str, code: str | None) -> tuple[int, dict[str, str], bytes]:
        details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
        return status, {"content-type": "application/json"}, json.dumps(
            {"error": {"code": status, "message": name, "status": name, "details": details}}).encode()
