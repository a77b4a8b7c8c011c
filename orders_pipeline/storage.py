"""The data-dir layout and atomic, idempotent writes of hive-partitioned Parquet."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

DATA_DIR_ENV = "ORDERS_DATA_DIR"
PART_FILE = "part-0.parquet"
MANIFEST_FILE = "_manifest.json"
_TEMP_PREFIX = ".tmp-"
ROW_GROUP_ROWS = 10_000
_KEY_SEPARATOR = "\x1f"  # a control character XML text cannot carry, so joined keys stay distinct


def data_dir() -> Path:
    """The root of all output: $ORDERS_DATA_DIR (a path or a local filesystem URI), default ./data.

    URIs are resolved by pyarrow.fs; only a local filesystem is accepted, because the atomic commit relies
    on a same-folder rename, which object stores (s3://, gs://) do not have.
    """
    configured = os.environ.get(DATA_DIR_ENV, "data")
    if "://" not in configured:
        return Path(configured).absolute()
    try:
        filesystem, path = pafs.FileSystem.from_uri(configured)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise ValueError(f"{DATA_DIR_ENV}={configured!r} is not a filesystem URI pyarrow understands: {exc}") from None
    if not isinstance(filesystem, pafs.LocalFileSystem):
        raise ValueError(
            f"{DATA_DIR_ENV}={configured!r}: only local paths and file:// URIs are supported "
            f"({filesystem.type_name} has no atomic rename; see README, Scaling)"
        )
    return Path(path).absolute()


def partition_dir(root: Path, table: str, day: date) -> Path:
    """Where one day of a raw table lives: <root>/<table>/dt=YYYY-MM-DD."""
    return root / table / f"dt={day.isoformat()}"


def mart_path(root: Path, model: str) -> Path:
    """Where a mart model is published: <root>/marts/<model>.parquet."""
    return root / "marts" / f"{model}.parquet"


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
    temp_path = directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        temp_path.write_text(json.dumps(content, indent=1, sort_keys=True, default=str))
        _fsync_file(temp_path)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)
    _fsync_dir(directory)
    return path


def read_manifest(directory: Path) -> dict | None:
    """The partition's sidecar, or None when it has none (written before manifests existed) or it is unreadable."""
    try:
        return json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


class PartitionWriter:
    """Streams record batches into a hidden temp file and swaps it in whole on commit.

    Readers glob `*.parquet`, so they never see the temp file; `os.replace` makes the swap atomic, so a
    crash leaves either the previous partition or the new one. Rows repeating a key are resolved on
    commit by keeping the one with the greatest `version_column`.
    """

    def __init__(self, directory: Path, schema: pa.Schema, key_columns: tuple[str, ...], version_column: str) -> None:
        self.directory = directory
        self.schema = schema
        self.key_columns = key_columns
        self.version_column = version_column
        self.rows_written = 0
        self.duplicates_dropped = 0
        self._keys: list[pa.Table] = []  # key columns of every batch, in Arrow: no Python object per row
        self._pending: list[pa.Table] = []  # small batches held until they make one row group
        self._pending_rows = 0
        self._temp_path = directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append a table of `schema` to the pending partition."""
        if table.num_rows == 0:
            return
        self._note_keys(table)
        self._open()  # the temp file exists from the first batch on, whatever the row-group size
        self._pending.append(table.cast(self.schema))
        self._pending_rows += table.num_rows
        self.rows_written += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._write_pending()

    def commit(self) -> Path:
        """Prepare and publish in one go."""
        self.prepare()
        return self.publish()

    def prepare(self) -> None:
        """Finish the temp file, resolve repeated keys and make it durable; readers still see the old partition."""
        self._write_pending()
        self._open().close()
        if self._has_duplicates():
            self._rewrite_keeping_latest()
        _fsync_file(self._temp_path)

    def publish(self) -> Path:
        """Atomically replace the partition with the prepared file and remove what earlier runs left behind."""
        final_path = self.directory / PART_FILE
        os.replace(self._temp_path, final_path)
        for stale in [*self.directory.glob("*.parquet"), *self.directory.glob(f"{_TEMP_PREFIX}*")]:
            if stale.name != PART_FILE:
                stale.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        return final_path

    def abort(self) -> None:
        """Drop the pending file; the committed partition, if any, is untouched."""
        if self._writer is not None:
            self._writer.close()
        self._temp_path.unlink(missing_ok=True)

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.abort()

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._temp_path, self.schema, compression="zstd")
        return self._writer

    def _write_pending(self) -> None:
        """Write the held batches as one row group (Python memory per batch stays small, row groups do not)."""
        if self._pending:
            self._open().write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0

    def _note_keys(self, table: pa.Table) -> None:
        """Keep a compact copy of the key columns (a slice would pin the whole batch's buffers)."""
        keys = table.select(list(self.key_columns))
        self._keys.append(pa.table([pa.concat_arrays(column.chunks) for column in keys.columns], names=keys.column_names))

    def _has_duplicates(self) -> bool:
        """Whether any key was written twice (distinct counts over the keys of all batches, no query plan)."""
        if not self._keys:
            return False
        keys = pa.concat_tables(self._keys)
        columns = [keys.column(name).cast(pa.string()) for name in self.key_columns]
        if any(_distinct(column) == keys.num_rows for column in columns):
            return False  # one column unique on its own makes the whole key unique, with no joined copy
        return len(columns) == 1 or _distinct(pc.binary_join_element_wise(*columns, _KEY_SEPARATOR)) < keys.num_rows

    def _rewrite_keeping_latest(self) -> None:
        table = pq.read_table(self._temp_path, schema=self.schema)
        latest = keep_latest(table, self.key_columns, self.version_column)
        self.duplicates_dropped = table.num_rows - latest.num_rows
        self.rows_written = latest.num_rows
        pq.write_table(latest, self._temp_path, compression="zstd")


def _distinct(column: pa.ChunkedArray) -> int:
    return pc.count_distinct(column, mode="all").as_py()


def keep_latest(table: pa.Table, key_columns: tuple[str, ...], version_column: str) -> pa.Table:
    """One row per key: the one with the greatest version (later rows win ties), in the original order."""
    position = pa.array(range(table.num_rows), pa.int64())
    ranked = table.append_column("__position", position)
    order = pc.sort_indices(
        ranked,
        sort_keys=[
            *((name, "ascending", "at_end") for name in key_columns),
            (version_column, "descending", "at_end"),
            ("__position", "descending", "at_end"),
        ],
    )
    ranked = ranked.take(order)
    is_first = _first_of_each_key(ranked, key_columns)
    kept = ranked.filter(is_first)
    kept = kept.take(pc.sort_indices(kept, sort_keys=[("__position", "ascending")]))
    return kept.drop_columns(["__position"])


def _first_of_each_key(sorted_table: pa.Table, key_columns: tuple[str, ...]) -> pa.Array:
    count = sorted_table.num_rows
    if count == 0:
        return pa.array([], pa.bool_())
    changed = pa.array([True] + [False] * (count - 1))
    for name in key_columns:
        column = sorted_table.column(name).combine_chunks()
        differs = pc.fill_null(pc.not_equal(column.slice(1), column.slice(0, count - 1)), True)
        changed = pc.or_(changed, pa.concat_arrays([pa.array([True]), differs]))
    return changed


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
