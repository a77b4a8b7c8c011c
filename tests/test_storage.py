"""Atomic, idempotent partition writes."""

from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orders_pipeline import storage
from orders_pipeline.storage import PartitionWriter, data_dir, keep_latest, partition_days, partition_dir

SCHEMA = pa.schema([("amazon_order_id", pa.string()), ("last_update_date", pa.timestamp("us", tz="UTC")), ("status", pa.string())])
DAY = date(2024, 3, 3)


def rows(*values: tuple[str, int, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"amazon_order_id": oid, "last_update_date": datetime(2024, 3, 3, hour, tzinfo=timezone.utc), "status": status} for oid, hour, status in values],
        schema=SCHEMA,
    )


def writer(root) -> PartitionWriter:
    return PartitionWriter(partition_dir(root, "orders", DAY), SCHEMA, ("amazon_order_id",), "last_update_date")


def test_commit_writes_the_contract_path_and_replaces_on_rerun(tmp_path):
    first = writer(tmp_path)
    first.write(rows(("A", 1, "Pending"), ("B", 2, "Pending")))
    path = first.commit()
    assert path == tmp_path / "orders" / "dt=2024-03-03" / "part-0.parquet"
    second = writer(tmp_path)
    second.write(rows(("A", 5, "Shipped")))
    second.commit()
    assert pq.read_table(path).to_pylist()[0]["status"] == "Shipped"
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


def test_duplicates_across_batches_keep_the_latest_version(tmp_path):
    partition = writer(tmp_path)
    partition.write(rows(("A", 3, "Unshipped"), ("B", 1, "Pending")))
    partition.write(rows(("A", 1, "Pending"), ("C", 2, "Shipped")))
    partition.commit()
    table = pq.read_table(partition_dir(tmp_path, "orders", DAY))
    assert sorted((r["amazon_order_id"], r["status"]) for r in table.to_pylist()) == [("A", "Unshipped"), ("B", "Pending"), ("C", "Shipped")]
    assert partition.duplicates_dropped == 1 and partition.rows_written == 3


def test_keep_latest_prefers_later_rows_on_ties_and_keeps_order():
    table = rows(("B", 1, "first"), ("A", 1, "x"), ("B", 1, "second"))
    assert [r["status"] for r in keep_latest(table, ("amazon_order_id",), "last_update_date").to_pylist()] == ["x", "second"]


def test_an_empty_day_writes_an_empty_file_with_the_schema(tmp_path):
    writer(tmp_path).commit()
    table = pq.read_table(partition_dir(tmp_path, "orders", DAY) / "part-0.parquet")
    assert table.num_rows == 0 and table.schema == SCHEMA
    assert partition_days(tmp_path, "orders") == [DAY]


def test_a_failure_before_commit_leaves_the_old_partition_and_no_temp_file(tmp_path):
    first = writer(tmp_path)
    first.write(rows(("A", 1, "Pending")))
    first.commit()
    with pytest.raises(RuntimeError):
        with writer(tmp_path) as failing:
            failing.write(rows(("Z", 9, "Shipped")))
            raise RuntimeError("API went away")
    directory = partition_dir(tmp_path, "orders", DAY)
    assert [p.name for p in directory.iterdir()] == ["part-0.parquet"]
    assert pq.read_table(directory).column("amazon_order_id").to_pylist() == ["A"]


def test_data_dir_accepts_a_path_or_a_file_uri(monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    monkeypatch.setenv("ORDERS_DATA_DIR", f"file://{tmp_path}/y")
    assert data_dir() == tmp_path / "y"
    monkeypatch.setenv("ORDERS_DATA_DIR", "ftp://host/dir")
    with pytest.raises(ValueError, match="ORDERS_DATA_DIR"):
        data_dir()


def test_publishing_removes_temp_files_a_killed_run_left_behind(tmp_path):
    directory = partition_dir(tmp_path, "orders", DAY)
    directory.mkdir(parents=True)
    (directory / ".tmp-from-a-killed-run").write_bytes(b"half a parquet file")
    partition = writer(tmp_path)
    partition.write(rows(("A", 1, "Pending")))
    partition.prepare()
    assert (directory / ".tmp-from-a-killed-run").exists()  # prepared, not yet published
    partition.publish()
    assert [p.name for p in directory.iterdir()] == ["part-0.parquet"]


def colliding_writer(root) -> PartitionWriter:
    """A writer whose key hash is the same for every row, so each row is a candidate for the exact check."""
    return PartitionWriter(
        partition_dir(root, "orders", DAY), SCHEMA, ("amazon_order_id",), "last_update_date",
        key_hash=lambda keys: np.zeros(keys.num_rows, np.int64),
    )


def test_colliding_hashes_of_distinct_keys_drop_nothing(tmp_path):
    partition = colliding_writer(tmp_path)
    partition.write(rows(("A", 1, "Pending"), ("B", 1, "Pending")))
    partition.write(rows(("C", 2, "Shipped")))
    partition.commit()
    table = pq.read_table(partition_dir(tmp_path, "orders", DAY))
    assert table.column("amazon_order_id").to_pylist() == ["A", "B", "C"]
    assert partition.duplicates_dropped == 0 and partition.rows_written == 3


def test_colliding_hashes_still_drop_exactly_the_superseded_versions(tmp_path):
    partition = colliding_writer(tmp_path)
    partition.write(rows(("A", 1, "Pending"), ("B", 4, "Shipped")))
    partition.write(rows(("A", 3, "Unshipped"), ("B", 2, "Pending"), ("C", 1, "Pending")))
    partition.commit()
    table = pq.read_table(partition_dir(tmp_path, "orders", DAY))
    assert [(r["amazon_order_id"], r["status"]) for r in table.to_pylist()] == [("B", "Shipped"), ("A", "Unshipped"), ("C", "Pending")]
    assert partition.duplicates_dropped == 2 and partition.rows_written == 3


def test_duplicates_in_different_row_groups_are_resolved_one_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 2)
    partition = writer(tmp_path)
    for batch in (rows(("A", 1, "Pending"), ("B", 1, "Pending")), rows(("C", 1, "Pending"), ("A", 2, "Shipped")),
                  rows(("B", 3, "Canceled"), ("D", 1, "Pending")), rows(("A", 1, "Pending"))):
        partition.write(batch)
    partition.commit()
    path = partition_dir(tmp_path, "orders", DAY) / "part-0.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    table = pq.read_table(path)
    assert table.schema == SCHEMA
    assert [(r["amazon_order_id"], r["status"]) for r in table.to_pylist()] == [("C", "Pending"), ("A", "Shipped"), ("B", "Canceled"), ("D", "Pending")]
    assert partition.duplicates_dropped == 3 and partition.rows_written == 4
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]
