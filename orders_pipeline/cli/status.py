"""What has landed in the data dir, read from the files and their manifests alone (no Dagster needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from orders_pipeline.storage.layout import PART_FILE, partition_days, partition_dir, read_manifest

RAW_TABLES = ("orders", "order_items")


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


def partition_statuses(root: Path, table: str) -> list[PartitionStatus]:
    """Every committed partition of `table`, oldest first."""
    return [_status(root, table, day) for day in partition_days(root, table)]


def _status(root: Path, table: str, day: date) -> PartitionStatus:
    directory = partition_dir(root, table, day)
    rows = pq.ParquetFile(directory / PART_FILE).metadata.num_rows
    manifest = read_manifest(directory) or {}
    if manifest.get("rows") != rows:  # a crash between the Parquet swap and the manifest write, or no manifest
        return PartitionStatus(table, day, rows, "unknown", None, None, None)
    state = "complete" if manifest.get("complete") else "partial"
    return PartitionStatus(
        table, day, rows, state, manifest.get("covered_until"), manifest.get("written_at"), manifest.get("dagster_run_id")
    )
