"""A boto3 S3 client for an S3-compatible store (AWS S3, MinIO, ...): media storage and backups
each have their own bucket and credentials, and build their client here.

boto3 is imported on the first call: only deployments that use S3 pay for importing it.
"""

from __future__ import annotations

from typing import Any


def s3_client(endpoint: str, region: str, access_key: str, secret_key: str, **config: Any) -> Any:
    """A low-level client (thread-safe, with a connection pool of its own). Empty endpoint or
    credentials mean AWS's own endpoint and boto3's usual credential chain; `config` goes to
    botocore's Config (retries, pool size, timeouts)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        config=Config(**config) if config else None,
    )
