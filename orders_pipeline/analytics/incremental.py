"""What incremental models need between runs: the raw partitions they saw and their state database (no Dagster).

An incremental model (`{{ config(materialized='incremental', unique_key='amazon_order_id') }}`) keeps its table
in `<data_dir>/_state/models.duckdb`. Each update records, with the table, what it was computed from:

- the hash of the model's rendered SQL (a changed model or setting means a full refresh);
- a fingerprint of every raw partition it read (file names, sizes, modification times and inodes per account and
  `dt`), so the next run knows which partitions were added, rewritten or removed since;
- the version of every incremental model upstream of it, so a delta it did not see means a full refresh.

A raw partition is one account's day: `<table>/account=NAME/dt=D`, or `<table>/dt=D` for account 'default' (see
`raw_tables`); both folders of one (account, day) count as one partition.

Beside them it keeps, per raw table and key column, a partition index: the distinct (key, account, dt) triples of
the raw rows, updated from the changed partitions like a model. It tells which few partitions hold the rows of the
keys an update recomputes, so the update reads those partitions only.

Ingest runs publish partitions while a build runs, so a build reads the raw tables through one `RawSnapshot`, taken
when it first reads them: every model and every partition index of the build reads its files and records its
fingerprints. A partition that lands or is rewritten later is left whole to the next build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orders_pipeline.analytics.raw_tables import (
    ACCOUNT_PREFIX, DAY_PREFIX, DEFAULT_ACCOUNT, Source, partition_list, read_files,
)

STATE_DIR = "_state"
STATE_FILE = "models.duckdb"
STATE_CATALOG = "state"
"""The name the state database is attached under in a build's connection."""

SNAPSHOTS_DIR = "snapshots"
STALE_SNAPSHOT_SECONDS = 24 * 3600
"""A snapshot folder older than this was left by a build that crashed (no build lasts a day)."""

PARTITIONS = "partitions by account and dt"
"""How fingerprints and indexes name partitions; part of every recorded hash, so state recorded otherwise (before
accounts) is rebuilt once."""

Fingerprint = dict[str, list[list]]
"""A source's partitions: `account=NAME/dt=D` -> sorted [file path relative to the table folder, size, mtime_ns,
inode] of its Parquet files (a partition is rewritten through a new file renamed over the old one, so a rewrite
always changes the inode)."""


def partition_key(account: str, dt: str) -> str:
    """The name of one account's day in fingerprints: `account=NAME/dt=YYYY-MM-DD`."""
    return f"{ACCOUNT_PREFIX}{account}/{DAY_PREFIX}{dt}"


def account_and_day(key: str) -> tuple[str, str]:
    """The (account, ISO day) a partition key names."""
    account, dt = key.split("/")
    return account.removeprefix(ACCOUNT_PREFIX), dt.removeprefix(DAY_PREFIX)


def partition_match(keys: Iterable[str]) -> str:
    """SQL true for the rows (with `account` and `dt` columns) of the given partitions."""
    pairs = [account_and_day(key) for key in keys]
    return f"(account, dt) in ({partition_list(pairs)})" if pairs else "false"


def kept_table(name: str) -> str:
    """The qualified name of a table in the attached state database."""
    return f'{STATE_CATALOG}."{name}"'


def key_match(relation: str, keys: str, key: str) -> str:
    """SQL that keeps the rows of `relation` whose `key` is in the TEMP table `keys` (null matching null)."""
    return f'semi join "{keys}" on {relation}."{key}" is not distinct from "{keys}"."{key}"'


def state_path(data_dir: Path) -> Path:
    """Where a data dir keeps its incremental models."""
    return Path(data_dir) / STATE_DIR / STATE_FILE


def fingerprint(table_dir: Path) -> Fingerprint:
    """The partitions of one raw table as they are on disk now; a partition without a Parquet file is absent."""
    partitions: Fingerprint = {}
    for relative, account, dt in day_folders(table_dir):
        files = [
            [f"{relative}/{entry.name}", stat.st_size, stat.st_mtime_ns, stat.st_ino]
            for entry in os.scandir(table_dir / relative)
            if entry.is_file() and entry.name.endswith(".parquet")
            for stat in [entry.stat()]
        ]
        if files:
            partitions[partition_key(account, dt)] = sorted(partitions.get(partition_key(account, dt), []) + files)
    return partitions


def day_folders(table_dir: Path) -> list[tuple[str, str, str]]:
    """Every day folder of a raw table in both layouts: (path relative to the table folder, account, ISO day)."""
    found: list[tuple[str, str, str]] = []
    if not table_dir.is_dir():
        return found
    for folder in os.scandir(table_dir):
        if not folder.is_dir():
            continue
        if folder.name.startswith(DAY_PREFIX):
            found.append((folder.name, DEFAULT_ACCOUNT, folder.name.removeprefix(DAY_PREFIX)))
        elif folder.name.startswith(ACCOUNT_PREFIX):
            account = folder.name.removeprefix(ACCOUNT_PREFIX)
            found.extend(
                (f"{folder.name}/{day.name}", account, day.name.removeprefix(DAY_PREFIX))
                for day in os.scandir(folder.path) if day.is_dir() and day.name.startswith(DAY_PREFIX)
            )
    return found


def partition_files(table_dir: Path, partitions: Fingerprint, keys: Iterable[str]) -> list[str]:
    """The Parquet files of the given partitions (absent ones have none), as absolute paths."""
    return [str(table_dir / file[0]) for key in keys for file in partitions.get(key, [])]


def changed_partitions(before: Fingerprint, now: Fingerprint) -> list[str]:
    """The partitions (keys) added, rewritten or removed between two fingerprints, sorted."""
    return sorted(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))


class RawSnapshot:
    """The raw partitions one build reads, pinned once: a hard link to every Parquet file, in a folder of the
    build's own, so a partition published over or beside them meanwhile changes nothing the build reads."""

    def __init__(self, data_dir: Path, tables: Iterable[str]) -> None:
        snapshots = Path(data_dir) / STATE_DIR / SNAPSHOTS_DIR
        _remove_stale(snapshots)
        self.root = snapshots / uuid.uuid4().hex
        self.fingerprints: dict[str, Fingerprint] = {}
        for table in tables:
            _pin(Path(data_dir) / table, self.root / table)
            self.fingerprints[table] = fingerprint(self.root / table)

    def table_dir(self, table: str) -> Path:
        """The pinned partitions of a raw table (`dt=D/*.parquet`, `account=NAME/dt=D/*.parquet`, as under the data
        dir)."""
        return self.root / table

    def files(self, table: str, keys: Iterable[str]) -> list[str]:
        """The pinned Parquet files of the given partitions of a raw table (absent ones have none)."""
        return partition_files(self.table_dir(table), self.fingerprints[table], keys)

    def close(self) -> None:
        """Remove the links (the files stay where ingestion keeps them)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _pin(table_dir: Path, into: Path) -> None:
    """Hard-link the Parquet files of every partition of a raw table into `into`, one partition at a time."""
    for relative, _account, _dt in day_folders(table_dir):
        _pin_partition(table_dir / relative, into / relative)


def _pin_partition(folder: Path, into: Path) -> None:
    """Hard-link a partition's Parquet files; when a writer replaces them meanwhile, link its new ones instead."""
    while folder.is_dir():
        into.mkdir(parents=True)
        try:
            for entry in os.scandir(folder):
                if entry.is_file() and entry.name.endswith(".parquet"):
                    os.link(entry.path, into / entry.name)
            return
        except FileNotFoundError:  # a file went between listing and linking: this partition again, as it is now
            shutil.rmtree(into)


def _remove_stale(snapshots: Path) -> None:
    """Remove the snapshot folders of builds that crashed."""
    if not snapshots.is_dir():
        return
    stale_before = time.time() - STALE_SNAPSHOT_SECONDS
    for entry in os.scandir(snapshots):
        if entry.is_dir() and entry.stat().st_mtime < stale_before:
            shutil.rmtree(entry.path, ignore_errors=True)


def sql_hash(sql: str) -> str:
    """A stable digest of a rendered model: any change to its SQL or settings changes it."""
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass
class ModelState:
    """What an incremental model's current table was computed from."""

    sql_hash: str
    sources: dict[str, Fingerprint]  # raw table -> its partitions when last read
    upstream: dict[str, int]  # incremental model upstream -> the version of it this table includes
    version: int = 0


class StateStore:
    """The `_models` bookkeeping table of the state database, attached to a build's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute(
            f"create table if not exists {STATE_CATALOG}._models (name varchar primary key, sql_hash varchar, "
            "sources varchar, upstream varchar, version bigint)"
        )

    def load(self, name: str) -> ModelState | None:
        """The recorded state of a model whose table exists, else None."""
        rows = self.con.execute(
            f"select sql_hash, sources, upstream, version from {STATE_CATALOG}._models where name = $1", [name]
        ).fetchall()
        if not rows or not self.has_table(name):
            return None
        digest, sources, upstream, version = rows[0]
        return ModelState(digest, json.loads(sources), json.loads(upstream), version)

    def version(self, name: str) -> int | None:
        """The current version of a model's table, None when it has none."""
        state = self.load(name)
        return None if state is None else state.version

    def has_table(self, name: str) -> bool:
        """Whether the state database holds the model's table."""
        return bool(
            self.con.execute(
                "select 1 from duckdb_tables() where database_name = $1 and table_name = $2", [STATE_CATALOG, name]
            ).fetchall()
        )

    def save(self, name: str, state: ModelState) -> None:
        """Record a model's new state (inside the caller's transaction)."""
        self.con.execute(
            f"insert or replace into {STATE_CATALOG}._models values ($1, $2, $3, $4, $5)",
            [name, state.sql_hash, json.dumps(state.sources), json.dumps(state.upstream), state.version],
        )


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit the block's changes to the state database together, or none of them."""
    con.execute("begin")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


class PartitionIndexes:
    """Per raw table and key column, the kept distinct (key, account, dt) of its rows: where a key's rows are."""

    def __init__(self, store: StateStore, snapshot: RawSnapshot) -> None:
        self.store = store
        self.con = store.con
        self.snapshot = snapshot
        self._current: set[str] = set()  # indexes brought up to date by this session

    def partitions_holding(self, src: Source, key: str, keys: str) -> list[str]:
        """The partitions of a raw table in the snapshot with rows of the key values in the TEMP table `keys`."""
        index = self._up_to_date(src, key)
        rows = self.con.execute(
            f"select distinct account, cast(dt as varchar) from {index} {key_match(index, keys, key)}"
        ).fetchall()
        return [partition_key(account, dt) for account, dt in rows]

    def _up_to_date(self, src: Source, key: str) -> str:
        """The index table, updated to the snapshot from the partitions changed since it was last updated (once)."""
        name = f"_partitions__{src.table}__{key}"
        target = kept_table(name)
        if name in self._current:
            return target
        before = self.store.load(name)
        if before is not None and before.sql_hash != PARTITIONS:
            before = None
        now = self.snapshot.fingerprints[src.table]
        with transaction(self.con):
            if before is None:
                every_file = self.snapshot.files(src.table, sorted(now))
                self.con.execute(f'create or replace table {target} as select distinct "{key}", account, dt '
                                 f"from {read_files(self.con, src, every_file)}")
            else:
                changed = changed_partitions(before.sources[src.table], now)
                if changed:
                    self.con.execute(f"delete from {target} where {partition_match(changed)}")
                    files = read_files(self.con, src, self.snapshot.files(src.table, changed))
                    self.con.execute(f'insert into {target} select distinct "{key}", account, dt from {files}')
            version = (before.version if before else 0) + 1
            self.store.save(name, ModelState(PARTITIONS, {src.table: now}, {}, version))
        self._current.add(name)
        return target
