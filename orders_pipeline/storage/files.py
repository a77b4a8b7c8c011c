"""Atomic file primitives shared by every writer: unique hidden temp names, their clean-up, and fsync."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

TEMP_PREFIX = ".tmp-"
ABANDONED_AFTER_SECONDS = 2 * 86_400  # a temp file this old has no live writer: no run lasts two days


def remove_abandoned_temp_files(directory: Path, older_than: float = ABANDONED_AFTER_SECONDS) -> None:
    """Remove temp files no live writer can own any more (older than any run); a concurrent writer's stay."""
    cutoff = time.time() - older_than
    for temp in directory.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()


def temp_path(directory: Path) -> Path:
    """A hidden name no other writer, process or host can pick (readers glob *.parquet and skip it)."""
    return directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}"


def fsync_file(path: Path) -> None:
    """Make a file's content durable."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, an unlink) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
