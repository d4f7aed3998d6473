"""Where media files live: one small interface, a directory on disk (the default) or any
S3-compatible object store, chosen by settings so that a deployment moves without code changes.

Keys are opaque, random and never reused (`new_key`): a stored file never changes, which is
what lets GET /media/{id} answer `Cache-Control: immutable`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

from nubo_backend.s3 import s3_client
from nubo_backend.settings import ROOT, Settings


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when there is no such key."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove these keys; keys already gone are not an error."""
        ...

    async def close(self) -> None: ...


def new_key(extension: str) -> str:
    """A fresh key, spread over 256 folders so that no directory grows huge."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token}.{extension}"


class BlockingStorage(ABC):
    """A backend whose client blocks: each call runs in a thread, off the event loop.
    Subclasses give _put, _get and _delete."""

    @abstractmethod
    def _put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def _get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def _delete(self, keys: list[str]) -> None: ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, key, data, content_type)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await asyncio.to_thread(self._delete, keys)

    async def close(self) -> None:
        return None


class DiskStorage(BlockingStorage):
    """Files under one directory (a named volume in compose). Writes go to a temporary file
    renamed into place, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key outside the media directory: {key!r}")
        return path

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)


class S3Storage(BlockingStorage):
    """Objects in one bucket of an S3-compatible store (AWS S3, MinIO, ...), through boto3,
    whose low-level client is thread-safe and keeps a connection pool of its own."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        client = s3_client(
            settings.media_s3_endpoint, settings.media_s3_region, settings.media_s3_access_key,
            settings.media_s3_secret_key, retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=20, connect_timeout=5, read_timeout=30,
        )
        return cls(client, settings.media_s3_bucket)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        with response["Body"] as body:
            return body.read()

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the API's most keys per call
            chunk = keys[start:start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def open_storage(settings: Settings) -> Storage:
    if settings.media_backend == "s3":
        return S3Storage.from_settings(settings)
    return DiskStorage(ROOT / settings.media_disk_path)  # an absolute path stays as it is
