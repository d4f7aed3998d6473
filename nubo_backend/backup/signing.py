"""What a restore may believe of a backup set: its files by name, and its manifest by signature.

A bucket is written by whoever holds its keys, which is not necessarily who may write the
database: a restore reads only the files it knows (`KNOWN_FILES`: nothing else is downloaded,
and no key names a path outside the scratch folder), and trusts a manifest, and through its
checksums every file, only when it carries an HMAC-SHA256 made with NUBO_BACKUP_SIGNING_KEY,
a key kept with the servers and never in the bucket.
"""

from __future__ import annotations

import hashlib
import hmac
import re

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
POSTGRES_FILE = "postgres.dump"
MONGO_FILE = "mongo.archive.gz"
DATA_FILES = frozenset({POSTGRES_FILE, MONGO_FILE})
KNOWN_FILES = DATA_FILES | {MANIFEST, SIGNATURE}
MIN_KEY_LENGTH = 32
SET_NAME = re.compile(r"nubo-\d{8}T\d{6}\.\d{3}Z")


def is_set_name(name: str) -> bool:
    return SET_NAME.fullmatch(name) is not None


def sign(key: str, manifest: bytes) -> str:
    return hmac.new(key.encode(), manifest, hashlib.sha256).hexdigest()


def is_signed(key: str, manifest: bytes, signature: bytes | None) -> bool:
    if signature is None:
        return False
    return hmac.compare_digest(sign(key, manifest).encode(), signature.strip())
