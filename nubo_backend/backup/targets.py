"""Where backup sets live: a directory (a volume) or a prefix in an S3-compatible bucket.

A set is a folder of files named `nubo-<UTC time>`; its manifest.json is written last, so a
set without one was interrupted and is never listed, restored or counted for retention.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from nubo_backend.backup.signing import KNOWN_FILES, MANIFEST, is_set_name
from nubo_backend.s3 import s3_client
from nubo_backend.settings import ROOT, Settings

PARTIAL_MAX_AGE = 86400  # a staging folder this old belongs to no running backup

Progress = Callable[[str], None]


class TargetError(Exception):
    """The target cannot be used; the message says what to fix."""


class Target(Protocol):
    description: str
    needs_signature: bool  # restore only sets whose manifest is signed (backup/signing.py)

    def stage(self, name: str) -> Path:
        """A local, empty folder to write the set's files into."""
        ...

    def store(self, name: str, staged: Path, progress: Progress) -> None:
        """Make the staged set durable at the target, its manifest last."""
        ...

    def names(self) -> list[str]:
        """Complete sets, newest first."""
        ...

    def fetch(self, name: str, progress: Progress) -> Path:
        """A local folder holding the set's files."""
        ...

    def read_manifest(self, name: str) -> dict[str, Any]: ...

    def delete(self, name: str) -> None: ...

    def cleanup(self) -> None:
        """Drop what interrupted backups left behind."""
        ...


def _newest_first(names: set[str]) -> list[str]:
    return sorted((n for n in names if is_set_name(n)), reverse=True)


class DirectoryTarget:
    """Sets as sub-folders of one directory; staged beside them, renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        self.needs_signature = False  # a volume of this machine: as trusted as the machine

    def stage(self, name: str) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staged = self.root / f".{name}.partial"
            staged.mkdir()
        except OSError as exc:
            raise TargetError(f"cannot write backups into {self.root}: {exc.strerror}; make it writable "
                              "or choose another --to / NUBO_BACKUP_TARGET") from None
        return staged

    def store(self, name: str, staged: Path, progress: Progress) -> None:
        staged.rename(self.root / name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return _newest_first({p.name for p in self.root.iterdir() if (p / MANIFEST).is_file()})

    def fetch(self, name: str, progress: Progress) -> Path:
        if not is_set_name(name):
            raise TargetError(f"{name!r} is not the name of a backup set")
        return self.root / name

    def read_manifest(self, name: str) -> dict[str, Any]:
        return json.loads((self.root / name / MANIFEST).read_text())

    def delete(self, name: str) -> None:
        shutil.rmtree(self.root / name, ignore_errors=True)

    def cleanup(self) -> None:
        if not self.root.is_dir():
            return
        for partial in self.root.glob(".nubo-*.partial"):
            if time.time() - partial.stat().st_mtime > PARTIAL_MAX_AGE:
                shutil.rmtree(partial, ignore_errors=True)


class S3Target:
    """Sets as key prefixes in a bucket: staged in a local temporary folder, then uploaded."""

    def __init__(self, client: Any, bucket: str, prefix: str, scratch: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.scratch = scratch
        self.description = f"s3://{bucket}/{self.prefix}"
        self.needs_signature = True  # written by whoever holds the bucket's keys

    def _key(self, name: str, filename: str = "") -> str:
        return f"{self.prefix}{name}/{filename}"

    def stage(self, name: str) -> Path:
        staged = self.scratch / name
        staged.mkdir(parents=True)
        return staged

    def store(self, name: str, staged: Path, progress: Progress) -> None:
        files = sorted(staged.iterdir(), key=lambda p: p.name == MANIFEST)  # the manifest last
        try:
            for path in files:
                self.client.upload_file(str(path), self.bucket, self._key(name, path.name),
                                        Callback=_UploadProgress(path, progress))
        except Exception as exc:  # noqa: BLE001 - botocore's errors are many; name the cause
            raise TargetError(f"cannot upload to {self.description}: {exc}; check the bucket exists and "
                              "NUBO_BACKUP_S3_* (endpoint, region, keys)") from None
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def _listing(self) -> dict[str, set[str]]:
        sets: dict[str, set[str]] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    name, _, filename = item["Key"][len(self.prefix):].partition("/")
                    sets.setdefault(name, set()).add(filename)
        except Exception as exc:  # noqa: BLE001
            raise TargetError(f"cannot list {self.description}: {exc}; check the bucket exists and "
                              "NUBO_BACKUP_S3_* (endpoint, region, keys)") from None
        return sets

    def names(self) -> list[str]:
        return _newest_first({name for name, files in self._listing().items() if MANIFEST in files})

    def fetch(self, name: str, progress: Progress) -> Path:
        if not is_set_name(name):
            raise TargetError(f"{name!r} is not the name of a backup set")
        local = self.scratch / name
        local.mkdir(parents=True, exist_ok=True)
        # Only the files a set is made of: any other key (`../x`, a name of someone's choosing)
        # is never downloaded, so nothing is written outside the scratch folder.
        for filename in sorted(self._listing().get(name, set()) & KNOWN_FILES):
            progress(f"download {filename}")
            self.client.download_file(self.bucket, self._key(name, filename), str(local / filename))
        return local

    def read_manifest(self, name: str) -> dict[str, Any]:
        response = self.client.get_object(Bucket=self.bucket, Key=self._key(name, MANIFEST))
        with response["Body"] as body:
            return json.loads(body.read())

    def delete(self, name: str) -> None:
        keys = [self._key(name, f) for f in self._listing().get(name, ())]
        if keys:
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys]})

    def cleanup(self) -> None:
        listing = self._listing()
        complete = _newest_first({n for n, files in listing.items() if MANIFEST in files})
        for name, files in listing.items():
            # Interrupted: older than a complete set, so no backup is still writing it.
            if MANIFEST not in files and complete and name < complete[0]:
                self.delete(name)


class _UploadProgress:
    """boto3's upload callback (called with each chunk's size): a line every few seconds."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.name, self.size, self.progress = path.name, path.stat().st_size, progress
        self.sent, self.last = 0, 0.0

    def __call__(self, chunk: int) -> None:
        self.sent += chunk
        if time.monotonic() - self.last >= 2 or self.sent >= self.size:
            self.last = time.monotonic()
            self.progress(f"upload {self.name}: {_mb(self.sent)} / {_mb(self.size)}")


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def open_target(spec: str, settings: Settings, scratch: Path) -> Target:
    """`s3://bucket/prefix` or a directory (relative to the project root, like media)."""
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://"):].partition("/")
        if not bucket:
            raise TargetError(f"{spec!r} names no bucket: use s3://BUCKET/PREFIX")
        client = s3_client(settings.backup_s3_endpoint, settings.backup_s3_region,
                           settings.backup_s3_access_key, settings.backup_s3_secret_key)
        return S3Target(client, bucket, prefix, scratch)
    if not spec:
        raise TargetError("no backup target: pass --to (or --from) or set NUBO_BACKUP_TARGET")
    return DirectoryTarget(ROOT / spec)
