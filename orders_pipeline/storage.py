"""The data-dir layout and atomic, idempotent writes of hive-partitioned Parquet."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

DATA_DIR_ENV = "ORDERS_DATA_DIR"
PART_FILE = "part-0.parquet"
MANIFEST_FILE = "_manifest.json"
_TEMP_PREFIX = ".tmp-"
ROW_GROUP_ROWS = 10_000
_ROW = "__row"  # the position of a row in the temp file, while repeated keys are resolved

KeyHash = Callable[[pa.Table], np.ndarray]


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
    commit by keeping the one with the greatest `version_column`. Only a 64-bit hash per row is held for
    that (8 bytes, whatever the key); hashes seen twice are confirmed on the keys read back from the file.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        key_columns: tuple[str, ...],
        version_column: str,
        *,
        key_hash: KeyHash | None = None,
    ) -> None:
        self.directory = directory
        self.schema = schema
        self.key_columns = key_columns
        self.version_column = version_column
        self.rows_written = 0
        self.duplicates_dropped = 0
        self._key_hash = key_hash or row_hashes
        self._hashes: list[np.ndarray] = []  # one int64 array of key hashes per batch, in file order
        self._pending: list[pa.Table] = []  # small batches held until they make one row group
        self._pending_rows = 0
        self._temp_path = directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append a table of `schema` to the pending partition."""
        if table.num_rows == 0:
            return
        table = table.cast(self.schema)
        self._hashes.append(self._key_hash(table.select(list(self.key_columns))))
        self._open()  # the temp file exists from the first batch on, whatever the row-group size
        self._pending.append(table)
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
        repeated = self._repeated_hashes()
        if len(repeated):
            self._drop_superseded(self._superseded_rows(repeated))
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

    def _repeated_hashes(self) -> np.ndarray:
        """Key hashes written more than once: every repeated key, and any two distinct keys that collide."""
        hashes, self._hashes = np.concatenate([np.empty(0, np.int64), *self._hashes]), []
        hashes.sort()
        return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])

    def _superseded_rows(self, repeated: np.ndarray) -> np.ndarray:
        """File positions of rows whose exact key comes again with a later version (or later with the same one)."""
        candidates = []
        for start, group in self._row_groups([*self.key_columns, self.version_column]):
            hit = np.flatnonzero(np.isin(self._key_hash(group.select(list(self.key_columns))), repeated))
            candidates.append(group.take(hit).append_column(_ROW, pa.array(hit + start, pa.int64())))
        rows = pa.concat_tables(candidates)
        kept = keep_latest(rows, self.key_columns, self.version_column).column(_ROW).to_numpy()
        return np.setdiff1d(rows.column(_ROW).to_numpy(), kept)

    def _drop_superseded(self, superseded: np.ndarray) -> None:
        """Copy the temp file without the superseded rows, one row group at a time, and swap the copy in."""
        if not len(superseded):
            return  # only distinct keys whose hashes collided
        copy_path = self.directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with pq.ParquetWriter(copy_path, self.schema, compression="zstd") as copy:
                for start, group in self._row_groups():
                    kept = ~np.isin(np.arange(start, start + group.num_rows), superseded)
                    copy.write_table(group.filter(pa.array(kept)))
            os.replace(copy_path, self._temp_path)
        finally:
            copy_path.unlink(missing_ok=True)
        self.duplicates_dropped = len(superseded)
        self.rows_written -= len(superseded)

    def _row_groups(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
        """The temp file one row group at a time (bounded memory), each with the file position of its first row."""
        with pq.ParquetFile(self._temp_path) as parquet:
            start = 0
            for index in range(parquet.metadata.num_row_groups):
                group = parquet.read_row_group(index, columns=columns)
                yield start, group
                start += group.num_rows
                del group
                pa.default_memory_pool().release_unused()  # mimalloc keeps freed pages, and each group frees a lot


def row_hashes(keys: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's key values (Python's own hash: C speed, stable within the process)."""
    columns = [column.to_pylist() for column in keys.columns]
    values = columns[0] if len(columns) == 1 else zip(*columns)
    return np.fromiter(map(hash, values), np.int64, keys.num_rows)


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
