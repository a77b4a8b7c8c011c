"""Atomic, idempotent writes of one hive partition that merge what was fetched now with what the partition held."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from orders_pipeline.storage.files import fsync_dir, fsync_file, remove_abandoned_temp_files, temp_path
from orders_pipeline.storage.layout import PART_FILE

ROW_GROUP_ROWS = 10_000
_ROW = "__row"  # the position of a row in its file, while keys are matched

KeyHash = Callable[[pa.Table], np.ndarray]


class PartitionWriter:
    """Streams the versions fetched now into a hidden temp file, merges in the committed partition, swaps the result in whole.

    A row is one version of a record, named by `key_columns`. On `prepare`, a version repeated within the fetch keeps
    its last copy; then the committed partition is merged in: a version fetched again takes the fetched copy, and a
    version not fetched now is carried over (the API returns only current versions, so dropping it would erase
    history), unless `replace` asks for the day to be rebuilt from the fetch alone. When the result holds exactly the
    committed rows, nothing is swapped, so the file and every fingerprint of it stay as they were.

    Readers glob `*.parquet`, so they never see the temp file; `os.replace` makes the swap atomic, so a crash at
    any moment leaves either the previous partition or the new one. Memory stays flat on big days: a 64-bit hash
    per fetched row (8 bytes, whatever the key); hashes seen twice are confirmed on exact keys read back from the files.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        key_columns: tuple[str, ...],
        *,
        replace: bool = False,
        key_hash: KeyHash | None = None,
    ) -> None:
        self.directory = directory
        self.schema = schema
        self.key_columns = key_columns
        self.replace = replace
        self.merge = MergeCounts()
        self._key_hash = key_hash or row_hashes
        self._hashes: list[np.ndarray] = []  # one int64 array of key hashes per batch, in file order
        self._pending: list[pa.Table] = []  # small batches held until they make one row group
        self._pending_rows = 0
        self._temp_path = temp_path(directory)
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
        self.merge.written += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._write_pending()

    def commit(self) -> Path:
        """Prepare and publish in one go."""
        self.prepare()
        return self.publish()

    def prepare(self) -> None:
        """Finish the temp file, resolve repeats, merge the committed partition in and make it durable; readers still see the old one."""
        self._write_pending()
        self._open().close()
        fetched, counts = np.unique(np.concatenate([np.empty(0, np.int64), *self._hashes]), return_counts=True)
        self._hashes = []
        superseded = self._repeated_in_fetch(fetched[counts > 1])
        self.merge.fetched_key_hashes = fetched
        self.merge.existed = (self.directory / PART_FILE).exists()
        committed = None if self.replace else self._committed_file()
        refetched = self._refetched_rows(committed, fetched) if committed else np.empty(0, np.int64)
        merge = self.merge
        merge.duplicates_dropped = len(superseded)
        merge.fetched = merge.written - len(superseded)
        merge.refetched = len(refetched)
        merge.new = merge.fetched - len(refetched)
        merge.carried_over = (_row_count(committed) - len(refetched)) if committed else 0
        merge.changed = committed is None or merge.new > 0 or not self._same_content(committed, refetched, superseded)
        if merge.changed and (len(superseded) or merge.carried_over):
            self._rewrite_temp(superseded, committed if merge.carried_over else None, refetched)
        if merge.changed:
            fsync_file(self._temp_path)

    def publish(self) -> Path:
        """Atomically swap the prepared file in (unless nothing changed) and remove what earlier runs left behind."""
        final_path = self.directory / PART_FILE
        if not self.merge.changed:
            self._temp_path.unlink(missing_ok=True)
            return final_path
        os.replace(self._temp_path, final_path)
        for stale in self.directory.glob("*.parquet"):
            if stale.name != PART_FILE:
                stale.unlink(missing_ok=True)
        remove_abandoned_temp_files(self.directory)
        fsync_dir(self.directory)
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

    def _committed_file(self) -> Path | None:
        """The partition's current file, if it has one; one that cannot be read, or lacks a column, is an error naming the fix."""
        path = self.directory / PART_FILE
        if not path.exists():
            return None
        try:
            with pq.ParquetFile(path) as parquet:
                columns = set(parquet.schema_arrow.names)
        except (OSError, pa.ArrowException) as exc:
            raise UnreadablePartitionError(f"{path} cannot be read ({exc}); rebuild the day with --replace") from None
        if missing := [name for name in self.schema.names if name not in columns]:
            raise UnreadablePartitionError(
                f"{path} lacks the columns {', '.join(missing)} (written by an older version); rebuild the day with --replace"
            )
        return path

    def _repeated_in_fetch(self, repeated: np.ndarray) -> np.ndarray:
        """Temp-file positions of fetched rows whose exact key comes again later in the fetch (the last copy wins);
        `repeated` are the sorted key hashes written more than once (repeated keys, or distinct keys colliding)."""
        if not len(repeated):
            return np.empty(0, np.int64)
        candidates = self._rows_with_hashes(self._temp_path, repeated)
        last = candidates.group_by(list(self.key_columns)).aggregate([(_ROW, "max")]).column(f"{_ROW}_max")
        return np.setdiff1d(candidates.column(_ROW).to_numpy(), last.to_numpy())

    def _refetched_rows(self, committed: Path, fetched: np.ndarray) -> np.ndarray:
        """Positions in the committed file of the versions fetched again now (exact keys, not just hashes)."""
        candidates = self._rows_with_hashes(committed, fetched)
        if not candidates.num_rows:
            return np.empty(0, np.int64)
        fetched_keys = set(_key_tuples(self._rows_with_hashes(self._temp_path, np.unique(self._key_hash(
            candidates.select(list(self.key_columns)))))))
        hit = [key in fetched_keys for key in _key_tuples(candidates)]
        return np.sort(candidates.column(_ROW).to_numpy()[np.asarray(hit, bool)])

    def _rows_with_hashes(self, path: Path, hashes: np.ndarray) -> pa.Table:
        """The key columns and file position of the rows of `path` whose key hash is in the sorted `hashes`."""
        found = [pa.table({**{name: pa.array([], self.schema.field(name).type) for name in self.key_columns},
                           _ROW: pa.array([], pa.int64())})]
        for start, group in _row_groups(path, list(self.key_columns)):
            hit = np.flatnonzero(np.isin(self._key_hash(group), hashes))
            found.append(group.take(hit).append_column(_ROW, pa.array(hit + start, pa.int64())))
        return pa.concat_tables(found)

    def _same_content(self, committed: Path, refetched: np.ndarray, superseded: np.ndarray) -> bool:
        """Whether every version fetched now equals its committed copy, value for value (64-bit hashes of whole rows)."""
        fetched = [_content_hashes(group, ~np.isin(np.arange(start, start + group.num_rows), superseded))
                   for start, group in _row_groups(self._temp_path)]
        kept = [_content_hashes(group, np.isin(np.arange(start, start + group.num_rows), refetched))
                for start, group in _row_groups(committed)]
        return np.array_equal(np.sort(np.concatenate([np.empty(0, np.int64), *fetched])),
                              np.sort(np.concatenate([np.empty(0, np.int64), *kept])))

    def _rewrite_temp(self, superseded: np.ndarray, committed: Path | None, refetched: np.ndarray) -> None:
        """Copy the fetch without its superseded rows, then the committed versions not fetched again, and swap the copy in."""
        copy_path = temp_path(self.directory)
        try:
            with pq.ParquetWriter(copy_path, self.schema, compression="zstd") as copy:
                for start, group in _row_groups(self._temp_path):
                    copy.write_table(group.filter(~np.isin(np.arange(start, start + group.num_rows), superseded)))
                for start, group in _row_groups(committed) if committed else ():
                    carried = group.filter(~np.isin(np.arange(start, start + group.num_rows), refetched))
                    copy.write_table(carried.select(self.schema.names).cast(self.schema))
            os.replace(copy_path, self._temp_path)
        finally:
            copy_path.unlink(missing_ok=True)


class UnreadablePartitionError(ValueError):
    """The committed partition cannot be merged into (unreadable, or of an older layout)."""


@dataclass
class MergeCounts:
    """What a partition write did: rows written, repeats dropped, versions new, fetched again and carried over."""

    written: int = 0  # rows handed to the writer
    duplicates_dropped: int = 0  # repeats of a version within the fetch
    fetched: int = 0  # distinct versions fetched now
    new: int = 0  # of those, versions the partition did not hold
    refetched: int = 0  # of those, versions it held (their fetched copy replaces the old one)
    carried_over: int = 0  # versions it held that were not fetched now, kept
    changed: bool = True  # False: the partition already held exactly this, and its file was left alone
    existed: bool = False  # the partition had a file before this write

    fetched_key_hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)  # sorted, distinct

    @property
    def total(self) -> int:
        """Rows in the partition after the write."""
        return self.fetched + self.carried_over

    def fetched_keys_missing_from(self, keys: pa.Table) -> int:
        """How many versions fetched now have no row in `keys` (the key columns read back from the published file)."""
        return int((~np.isin(self.fetched_key_hashes, row_hashes(keys))).sum())


def _row_groups(path: Path, columns: list[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
    """A Parquet file one row group at a time (bounded memory), each with the file position of its first row."""
    with pq.ParquetFile(path) as parquet:
        start = 0
        for index in range(parquet.metadata.num_row_groups):
            group = parquet.read_row_group(index, columns=columns)
            yield start, group
            start += group.num_rows
            del group
            pa.default_memory_pool().release_unused()  # mimalloc keeps freed pages, and each group frees a lot


def _row_count(path: Path) -> int:
    with pq.ParquetFile(path) as parquet:
        return parquet.metadata.num_rows


def _key_tuples(keys: pa.Table) -> Iterator[tuple]:
    """Each row's key values as a tuple (null equals null here, as one version's key)."""
    names = [name for name in keys.column_names if name != _ROW]
    return zip(*(keys.column(name).to_pylist() for name in names))


def row_hashes(keys: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's key values (Python's own hash: C speed, stable within the process)."""
    columns = [_hash_input(column).to_pylist() for column in keys.columns]
    values = columns[0] if len(columns) == 1 else zip(*columns)
    return np.fromiter(map(hash, values), np.int64, keys.num_rows)


def _hash_input(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as their integer ticks: a Python int is made ten times faster than a datetime, and hashes alike."""
    return column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column


def _content_hashes(table: pa.Table, rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every value of each selected row (lists as tuples, so they hash)."""
    chosen = table.filter(pa.array(rows))
    columns = [_hashable(column) for column in chosen.columns]
    return np.fromiter(map(hash, zip(*columns)), np.int64, chosen.num_rows)


def _hashable(column: pa.ChunkedArray) -> list:
    values = column.to_pylist()
    if pa.types.is_list(column.type):
        return [None if value is None else tuple(value) for value in values]
    return values
