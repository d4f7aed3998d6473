"""The three push services behind one interface: `send(job) -> Outcome`.

- Web Push: RFC 8291 `aes128gcm` payload (http_ece), RFC 8292 VAPID header (py-vapid), RFC 8030
  headers (TTL, Urgency, Topic), over httpx through the endpoint guard (endpoints.py).
- APNs: HTTP/2 (httpx with h2), token-based auth: an ES256 provider JWT (PyJWT) renewed every
  50 minutes (Apple wants 20 to 60).
- FCM HTTP v1: an OAuth2 access token from the service account's JWT assertion (RFC 7523,
  RS256 via PyJWT), then `messages:send`. Written here rather than through google-auth,
  whose token refresh is synchronous (requests): it would block the event loop, or need a
  thread per refresh, for two HTTP requests we can make with the client we already have.

What a service answers becomes one of four outcomes the sender acts on: sent, gone (delete the
subscription: 404/410, APNs `Unregistered`/`BadDeviceToken`, FCM `UNREGISTERED`), retry
(429, 5xx, timeouts; `Retry-After` honoured) or failed (a refusal that retrying cannot mend).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import http_ece
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from nubo_backend.push.endpoints import endpoint_origin
from nubo_backend.push.vapid import VapidSigner, b64url_decode

SENT, GONE, RETRY, FAILED = "sent", "gone", "retry", "failed"
APNS_TOKEN_LIFETIME = 50 * 60
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass(frozen=True)
class Outcome:
    status: str  # SENT, GONE, RETRY or FAILED
    detail: str = ""
    retry_after: float | None = None  # seconds, from the service's Retry-After


def retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110)."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _by_status(response: httpx.Response, gone: bool, detail: str) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(SENT)
    if gone:
        return Outcome(GONE, detail or str(status))
    if status == 429 or status >= 500:
        return Outcome(RETRY, detail or str(status), retry_after(response.headers))
    return Outcome(FAILED, detail or str(status))


class Provider(Protocol):
    async def send(self, job: Mapping[str, Any]) -> Outcome: ...


class WebPush:
    def __init__(self, client: httpx.AsyncClient, signer: VapidSigner, allow_private: bool) -> None:
        self.client = client
        self.signer = signer
        self.allow_private = allow_private

    async def send(self, job: Mapping[str, Any]) -> Outcome:
        body = http_ece.encrypt(
            job["payload"].encode(),
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),  # one key per message (RFC 8291)
            dh=b64url_decode(job["p256dh"]),
            auth_secret=b64url_decode(job["auth"]),
            version="aes128gcm",
        )
        headers = {
            "TTL": str(max(int(job["ttl_left"]), 0)),
            "Urgency": job["urgency"],
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.signer.authorization(endpoint_origin(job["endpoint"], self.allow_private)),
        }
        if job["topic"]:
            headers["Topic"] = job["topic"]
        response = await self.client.post(job["endpoint"], content=body, headers=headers)
        return _by_status(response, response.status_code in (404, 410), response.text[:200])


class APNs:
    def __init__(self, client: httpx.AsyncClient, url: str, key_pem: str, key_id: str, team_id: str,
                 topic: str) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.key_pem = key_pem
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self._token: tuple[float, str] | None = None

    def provider_token(self, renew: bool = False) -> str:
        now = time.time()
        if renew or self._token is None or self._token[0] + APNS_TOKEN_LIFETIME <= now:
            token = jwt.encode({"iss": self.team_id, "iat": int(now)}, self.key_pem, algorithm="ES256",
                               headers={"kid": self.key_id})
            self._token = (now, token)
        return self._token[1]

    async def send(self, job: Mapping[str, Any]) -> Outcome:
        payload = json.loads(job["payload"])
        body = {"aps": {"alert": {"title": payload.get("title", ""), "body": payload.get("body", "")},
                        "sound": "default", "mutable-content": 1},
                "nubo": payload}
        for renew in (False, True):  # an ExpiredProviderToken is answered with a fresh token, once
            headers = {
                "authorization": f"bearer {self.provider_token(renew)}",
                "apns-topic": self.topic,
                "apns-push-type": "alert",
                "apns-priority": "10" if job["urgency"] == "high" else "5",
                "apns-expiration": str(int(time.time() + max(job["ttl_left"], 0))),
            }
            if job["topic"]:
                headers["apns-collapse-id"] = job["topic"]
            response = await self.client.post(f"{self.url}/3/device/{job['endpoint']}", json=body, headers=headers)
            reason = _json_field(response, "reason")
            if response.status_code == 403 and reason == "ExpiredProviderToken" and not renew:
                continue
            break
        gone = response.status_code == 410 or reason in ("Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic")
        return _by_status(response, gone, reason)


class FCM:
    def __init__(self, client: httpx.AsyncClient, url: str, service_account: Mapping[str, Any]) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.account = service_account
        self._token: tuple[float, str] | None = None

    async def access_token(self, renew: bool = False) -> str:
        now = time.time()
        if not renew and self._token is not None and self._token[0] > now + 60:
            return self._token[1]
        token_uri = self.account["token_uri"]
        assertion = jwt.encode(
            {"iss": self.account["client_email"], "scope": FCM_SCOPE, "aud": token_uri,
             "iat": int(now), "exp": int(now) + 3600},
            self.account["private_key"], algorithm="RS256",
            headers={"kid": self.account.get("private_key_id", "")},
        )
        response = await self.client.post(token_uri, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
        response.raise_for_status()
        answer = response.json()
        self._token = (now + float(answer.get("expires_in", 3600)), answer["access_token"])
        return self._token[1]

    async def send(self, job: Mapping[str, Any]) -> Outcome:
        payload = json.loads(job["payload"])
        android: dict[str, Any] = {"priority": "high" if job["urgency"] == "high" else "normal",
                                   "ttl": f"{max(int(job['ttl_left']), 0)}s"}
        if job["topic"]:
            android["collapse_key"] = job["topic"]
        message = {"message": {
            "token": job["endpoint"],
            # FCM data values are strings; the whole payload travels as one.
            "data": {"nubo": job["payload"]},
            "notification": {"title": payload.get("title", ""), "body": payload.get("body", "")},
            "android": android,
        }}
        url = f"{self.url}/v1/projects/{self.account['project_id']}/messages:send"
        for renew in (False, True):  # a 401 is answered with a fresh access token, once
            try:
                token = await self.access_token(renew)
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                if status == 429 or status >= 500:
                    return Outcome(RETRY, f"token endpoint {status}", retry_after(exc.response.headers))
                return Outcome(FAILED, f"token endpoint {status}")
            response = await self.client.post(url, json=message, headers={"authorization": f"Bearer {token}"})
            if response.status_code != 401 or renew:
                break
        code = _fcm_error_code(response)
        gone = code == "UNREGISTERED" or (response.status_code == 404 and code in ("", "NOT_FOUND"))
        return _by_status(response, gone, code)


def _json_field(response: httpx.Response, name: str) -> str:
    try:
        value = response.json().get(name, "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _fcm_error_code(response: httpx.Response) -> str:
    """The FcmError's errorCode (UNREGISTERED...), else the Google API status (NOT_FOUND...)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))


def read_service_account(path: str) -> dict[str, Any]:
    account = json.loads(Path(path).read_text())
    missing = [k for k in ("client_email", "private_key", "token_uri", "project_id") if not account.get(k)]
    if missing:
        raise ValueError(f"service account {path} lacks {', '.join(missing)}")
    return account
