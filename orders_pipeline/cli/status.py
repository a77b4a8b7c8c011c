"""What has landed in the data dir, read from the files and their manifests alone (no Dagster needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from orders_pipeline.storage.layout import PART_FILE, RAW_TABLES, partition_days, partition_dir, read_manifest


@dataclass(frozen=True)
class PartitionStatus:
    """One committed partition: its rows and whether the server vouched for the whole day."""

    table: str
    day: date
    rows: int
    state: str  # complete | partial | unknown (no manifest, or one that does not match the file)
    covered_until: str | None
    written_at: str | None
    run_id: str | None
    account: str | None = None  # with an accounts file, whose partition it is


def partition_statuses(root: Path, table: str, account: str | None = None) -> list[PartitionStatus]:
    """Every committed partition of `table` (of `account`'s folders, when given), oldest first."""
    return [_status(root, table, day, account) for day in partition_days(root, table, account)]


def print_partitions(root: Path, accounts: list[str], days: int) -> list[PartitionStatus]:
    """Print the partitions per table (per account and table with accounts) and the latest `days` day by day; return
    every orders partition, for the caller's summary lines (empty: nothing has landed)."""
    scopes: list[str | None] = list(accounts) or [None]
    statuses = {(account, table): partition_statuses(root, table, account) for account in scopes for table in RAW_TABLES}
    if not any(statuses.values()):
        return []
    column = f"{'account':<20} " if accounts else ""
    print(f"\n{column}{'table':<12} {'partitions':>10}  {'first':<10}  {'last':<10}  {'complete':>8} {'partial':>7} {'unknown':>7} {'rows':>12}")
    for (account, table), rows in statuses.items():
        states = [status.state for status in rows]
        first, last = (rows[0].day, rows[-1].day) if rows else ("-", "-")
        name = f"{account:<20} " if accounts else ""
        print(
            f"{name}{table:<12} {len(rows):>10}  {first!s:<10}  {last!s:<10}  {states.count('complete'):>8} "
            f"{states.count('partial'):>7} {states.count('unknown'):>7} {sum(s.rows for s in rows):>12,}"
        )
    for account in scopes:
        orders = statuses[(account, "orders")]
        if days > 0 and orders:
            items = {status.day: status.rows for status in statuses[(account, "order_items")]}
            print(f"\n{'account ' + account + ': ' if account else ''}{'day':<10}  {'state':<8}  {'orders':>7}  {'items':>7}  covered until / written at")
            for status in orders[-days:]:
                print(f"{status.day!s:<10}  {status.state:<8}  {status.rows:>7,}  {items.get(status.day, 0):>7,}  "
                      f"{status.covered_until or '-'} / {status.written_at or '-'}")
        partial = [str(status.day) for status in orders if status.state == "partial"]
        if partial:
            print(f"\nPartial days{' of account ' + account if account else ''} (re-run to complete): {', '.join(partial)}")
    return [status for (_, table), rows in statuses.items() if table == "orders" for status in rows]


def _status(root: Path, table: str, day: date, account: str | None) -> PartitionStatus:
    directory = partition_dir(root, table, day, account)
    rows = pq.ParquetFile(directory / PART_FILE).metadata.num_rows
    manifest = read_manifest(directory) or {}
    if manifest.get("rows") != rows:  # a crash between the Parquet swap and the manifest write, or no manifest
        return PartitionStatus(table, day, rows, "unknown", None, None, None, account)
    state = "complete" if manifest.get("complete") else "partial"
    return PartitionStatus(
        table, day, rows, state, manifest.get("covered_until"), manifest.get("written_at"), manifest.get("dagster_run_id"),
        account,
    )
