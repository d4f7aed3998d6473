"""The server's VAPID identity (RFC 8292): its P-256 key, and the JWT a push service checks.

py-vapid parses, generates and signs; this module keeps one signed header per push service
for most of its life (a JWT lasts 12 hours, signing one per push would be wasted work).
"""

from __future__ import annotations

import base64
import time
from functools import cache

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02

JWT_LIFETIME = 12 * 3600  # RFC 8292 allows up to 24 hours
RESIGN_BEFORE = 3600  # a header is signed again an hour before its JWT expires


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_private_key_pem() -> str:
    """A fresh VAPID private key, PEM (PKCS#8), for the key file made on first start."""
    vapid = Vapid02()
    vapid.generate_keys()
    return vapid.private_pem().decode()


def load_vapid(private_key: str) -> Vapid02:
    """The key as configured: PEM, or base64url of the raw 32-byte scalar (what web-push tools print)."""
    text = private_key.strip()
    if text.startswith("-----BEGIN"):
        return Vapid02.from_pem(text.encode())
    return Vapid02.from_raw(text.encode())


class VapidSigner:
    """Authorization headers for push services, cached per audience (scheme://host)."""

    def __init__(self, private_key: str, subject: str) -> None:
        self.vapid = load_vapid(private_key)
        self.subject = subject
        raw = self.vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self.server_key = b64url(raw)  # the `server_key` clients pass as applicationServerKey
        self._headers: dict[str, tuple[float, str]] = {}

    def authorization(self, audience: str) -> str:
        """`vapid t=<jwt>, k=<server key>` for a push service at `audience`."""
        now = time.time()
        cached = self._headers.get(audience)
        if cached is not None and cached[0] - RESIGN_BEFORE > now:
            return cached[1]
        expires = int(now) + JWT_LIFETIME
        header = self.vapid.sign({"aud": audience, "exp": expires, "sub": self.subject})["Authorization"]
        self._headers[audience] = (expires, header)
        return header


@cache
def server_key(private_key: str) -> str:
    """The public key (base64url, uncompressed point) of a configured private key."""
    raw = load_vapid(private_key).public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return b64url(raw)
