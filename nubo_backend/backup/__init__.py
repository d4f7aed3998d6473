"""Backups of the stores and their restore: `nubo backup`, `nubo restore` (docs/deploy.md).

targets.py  where backup sets live (a directory or an S3-compatible bucket), retention
tools.py    pg_dump / pg_restore / mongodump / mongorestore as subprocesses, with progress
service.py  one backup set made, listed, checked or restored
"""

from nubo_backend.backup.service import (
    BackupError,
    BackupSet,
    check_recent,
    human_size,
    list_backups,
    make_backup,
    restore_backup,
)

__all__ = ["BackupError", "BackupSet", "check_recent", "human_size", "list_backups", "make_backup", "restore_backup"]
