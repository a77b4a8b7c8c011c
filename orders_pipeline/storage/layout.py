"""Where everything lives under the data dir, and the JSON manifest beside each raw partition."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from orders_pipeline.storage.files import fsync_dir, fsync_file, temp_path

DATA_DIR_ENV = "ORDERS_DATA_DIR"
LOCAL_DIR_ENV = "ORDERS_LOCAL_DIR"  # the local mirror of an s3:// data dir
OBJECT_STORE_SCHEME = "s3://"
PART_FILE = "part-0.parquet"
MANIFEST_FILE = "_manifest.json"


def data_dir() -> Path:
    """The root of all output: $ORDERS_DATA_DIR (a path or a local filesystem URI), default ./data.

    With `s3://bucket/prefix` it is this machine's local mirror of the store ($ORDERS_LOCAL_DIR, see
    `object_store`), laid out like any data dir. Other URIs are resolved by pyarrow.fs; only a local filesystem is
    accepted, because the atomic commit relies on a same-folder rename.
    """
    configured = os.environ.get(DATA_DIR_ENV, "data")
    if "://" not in configured:
        return Path(configured).absolute()
    if configured.startswith(OBJECT_STORE_SCHEME):
        return mirror_dir(configured)
    try:
        filesystem, path = pafs.FileSystem.from_uri(configured)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise ValueError(f"{DATA_DIR_ENV}={configured!r} is not a filesystem URI pyarrow understands: {exc}") from None
    if not isinstance(filesystem, pafs.LocalFileSystem):
        raise ValueError(
            f"{DATA_DIR_ENV}={configured!r}: only local paths, file:// URIs and s3://bucket/prefix are supported "
            f"({filesystem.type_name} is not; see README, Object storage)"
        )
    return Path(path).absolute()


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as ("bucket", "some/prefix"); a URI without a bucket is an error naming the fix."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{DATA_DIR_ENV}={uri!r} is not an object-store URI: write s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


def mirror_dir(uri: str) -> Path:
    """This machine's working copy of an object-store data dir: $ORDERS_LOCAL_DIR, else a cache folder named after
    the bucket and prefix ($XDG_CACHE_HOME, default ~/.cache, /orders_pipeline/s3/<bucket>/<prefix>)."""
    bucket, prefix = bucket_and_prefix(uri)
    if configured := os.environ.get(LOCAL_DIR_ENV):
        return Path(configured).absolute()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (cache / "orders_pipeline" / "s3" / bucket / prefix).absolute()


def partition_dir(root: Path, table: str, day: date) -> Path:
    """Where one day of a raw table lives: <root>/<table>/dt=YYYY-MM-DD."""
    return root / table / f"dt={day.isoformat()}"


def mart_path(root: Path, model: str) -> Path:
    """Where a mart model is published: <root>/marts/<model>.parquet."""
    return marts_dir(root) / f"{model}.parquet"


def marts_dir(root: Path) -> Path:
    """The folder of the published marts: <root>/marts."""
    return root / "marts"


def reports_dir(root: Path) -> Path:
    """Where the chart files go: <root>/reports."""
    return root / "reports"


def partition_days(root: Path, table: str) -> list[date]:
    """The days for which a raw table has a committed partition, oldest first."""
    base = root / table
    if not base.is_dir():
        return []
    days = [date.fromisoformat(entry.name[3:]) for entry in base.iterdir() if entry.name.startswith("dt=")]
    return sorted(day for day in days if (partition_dir(root, table, day) / PART_FILE).exists())


def write_manifest(directory: Path, content: dict) -> Path:
    """Atomically write the JSON sidecar describing a committed partition (readers of *.parquet ignore it)."""
    path = directory / MANIFEST_FILE
    temp = temp_path(directory)
    try:
        temp.write_text(json.dumps(content, indent=1, sort_keys=True, default=str))
        fsync_file(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(directory)
    return path


def read_manifest(directory: Path) -> dict | None:
    """The partition's sidecar, or None when it has none (written before manifests existed) or it is unreadable."""
    try:
        return json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
