"""Atomic, idempotent partition writes that merge: a version is stored once, and versions seen before are kept."""

import os
import time
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orders_pipeline.storage import partitions
from orders_pipeline.storage.layout import data_dir, partition_days, partition_dir
from orders_pipeline.storage.partitions import PartitionWriter, UnreadablePartitionError

SCHEMA = pa.schema([("amazon_order_id", pa.string()), ("last_update_date", pa.timestamp("us", tz="UTC")), ("status", pa.string())])
KEY = ("amazon_order_id", "last_update_date")
DAY = date(2024, 3, 3)


def rows(*values: tuple[str, int | None, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"amazon_order_id": oid, "last_update_date": None if hour is None else datetime(2024, 3, 3, hour, tzinfo=timezone.utc),
          "status": status} for oid, hour, status in values],
        schema=SCHEMA,
    )


def writer(root, **options) -> PartitionWriter:
    return PartitionWriter(partition_dir(root, "orders", DAY), SCHEMA, KEY, **options)


def stored(root) -> list[tuple]:
    table = pq.read_table(partition_dir(root, "orders", DAY))
    return sorted((r["amazon_order_id"], r["last_update_date"] and r["last_update_date"].hour, r["status"]) for r in table.to_pylist())


def commit(root, *values, **options) -> PartitionWriter:
    partition = writer(root, **options)
    partition.write(rows(*values))
    partition.commit()
    return partition


def test_commit_writes_the_contract_path(tmp_path):
    partition = writer(tmp_path)
    partition.write(rows(("A", 1, "Pending"), ("B", 2, "Pending")))
    path = partition.commit()
    assert path == tmp_path / "orders" / "dt=2024-03-03" / "part-0.parquet"
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


def test_a_rerun_merges_keeping_versions_not_returned_again(tmp_path):
    commit(tmp_path, ("A", 1, "Pending"), ("B", 2, "Pending"))
    second = commit(tmp_path, ("A", 5, "Unshipped"), ("C", 6, "Pending"))  # A's 01:00 version is no longer served
    assert stored(tmp_path) == [("A", 1, "Pending"), ("A", 5, "Unshipped"), ("B", 2, "Pending"), ("C", 6, "Pending")]
    merge = second.merge
    assert (merge.fetched, merge.new, merge.refetched, merge.carried_over, merge.total) == (2, 2, 0, 2, 4)


def test_a_version_fetched_again_replaces_its_older_copy_and_is_stored_once(tmp_path):
    commit(tmp_path, ("A", 1, None), ("B", 2, "Pending"))  # A's status was not decodable then
    second = commit(tmp_path, ("A", 1, "Pending"))
    assert stored(tmp_path) == [("A", 1, "Pending"), ("B", 2, "Pending")]
    assert (second.merge.new, second.merge.refetched, second.merge.carried_over, second.merge.changed) == (0, 1, 1, True)


def test_a_rerun_with_nothing_new_leaves_the_file_alone(tmp_path):
    commit(tmp_path, ("A", 1, "Pending"), ("B", 2, "Pending"), ("C", None, "Pending"))
    path = partition_dir(tmp_path, "orders", DAY) / "part-0.parquet"
    before = path.stat()
    again = commit(tmp_path, ("B", 2, "Pending"), ("C", None, "Pending"))  # A moved on to another day
    after = path.stat()
    assert not again.merge.changed and again.merge.total == 3
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


def test_replace_rebuilds_the_day_from_the_fetch_alone(tmp_path):
    commit(tmp_path, ("A", 1, "Pending"), ("B", 2, "Pending"))
    commit(tmp_path, ("A", 5, "Unshipped"), replace=True)
    assert stored(tmp_path) == [("A", 5, "Unshipped")]


def test_two_versions_of_one_order_in_one_fetch_are_both_kept_and_repeats_dropped(tmp_path):
    partition = writer(tmp_path)
    partition.write(rows(("A", 3, "Unshipped"), ("B", 1, "Pending")))
    partition.write(rows(("A", 1, "Pending"), ("B", 1, "Pending-again"), ("C", 2, "Shipped")))
    partition.commit()
    assert stored(tmp_path) == [("A", 1, "Pending"), ("A", 3, "Unshipped"), ("B", 1, "Pending-again"), ("C", 2, "Shipped")]
    assert partition.merge.duplicates_dropped == 1 and partition.merge.fetched == 4


def test_an_empty_day_writes_an_empty_file_with_the_schema(tmp_path):
    writer(tmp_path).commit()
    table = pq.read_table(partition_dir(tmp_path, "orders", DAY) / "part-0.parquet")
    assert table.num_rows == 0 and table.schema == SCHEMA
    assert partition_days(tmp_path, "orders") == [DAY]


def test_a_failure_before_commit_leaves_the_old_partition_and_no_temp_file(tmp_path):
    commit(tmp_path, ("A", 1, "Pending"))
    with pytest.raises(RuntimeError):
        with writer(tmp_path) as failing:
            failing.write(rows(("Z", 9, "Shipped")))
            raise RuntimeError("API went away")
    directory = partition_dir(tmp_path, "orders", DAY)
    assert [p.name for p in directory.iterdir()] == ["part-0.parquet"]
    assert pq.read_table(directory).column("amazon_order_id").to_pylist() == ["A"]


def test_an_unreadable_committed_partition_is_an_error_naming_replace_and_replace_recovers(tmp_path):
    directory = partition_dir(tmp_path, "orders", DAY)
    directory.mkdir(parents=True)
    (directory / "part-0.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UnreadablePartitionError, match="--replace"):
        commit(tmp_path, ("A", 1, "Pending"))
    commit(tmp_path, ("A", 1, "Pending"), replace=True)
    assert stored(tmp_path) == [("A", 1, "Pending")]


def test_data_dir_accepts_a_path_or_a_file_uri(monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    monkeypatch.setenv("ORDERS_DATA_DIR", f"file://{tmp_path}/y")
    assert data_dir() == tmp_path / "y"
    monkeypatch.setenv("ORDERS_DATA_DIR", "ftp://host/dir")
    with pytest.raises(ValueError, match="ORDERS_DATA_DIR"):
        data_dir()


def test_publishing_removes_only_abandoned_temp_files_never_a_live_writers(tmp_path):
    directory = partition_dir(tmp_path, "orders", DAY)
    directory.mkdir(parents=True)
    abandoned = directory / ".tmp-from-a-run-killed-days-ago"
    abandoned.write_bytes(b"half a parquet file")
    days_ago = time.time() - 3 * 86_400
    os.utime(abandoned, (days_ago, days_ago))
    concurrent = writer(tmp_path)  # another writer of the same day, still fetching
    concurrent.write(rows(("B", 2, "Pending")))
    partition = writer(tmp_path)
    partition.write(rows(("A", 1, "Pending")))
    partition.prepare()
    assert abandoned.exists()  # prepared, not yet published
    partition.publish()
    assert not abandoned.exists()
    concurrent.commit()  # its temp file survived the other writer's publish
    assert stored(tmp_path) == [("A", 1, "Pending"), ("B", 2, "Pending")]
    assert [p.name for p in directory.iterdir()] == ["part-0.parquet"]


def colliding_writer(root) -> PartitionWriter:
    """A writer whose key hash is the same for every row, so each row is a candidate for the exact check."""
    return PartitionWriter(partition_dir(root, "orders", DAY), SCHEMA, KEY, key_hash=lambda keys: np.zeros(keys.num_rows, np.int64))


def test_colliding_hashes_of_distinct_keys_drop_nothing(tmp_path):
    partition = colliding_writer(tmp_path)
    partition.write(rows(("A", 1, "Pending"), ("B", 1, "Pending")))
    partition.write(rows(("C", 2, "Shipped")))
    partition.commit()
    again = colliding_writer(tmp_path)
    again.write(rows(("D", 3, "Pending")))
    again.commit()
    assert stored(tmp_path) == [("A", 1, "Pending"), ("B", 1, "Pending"), ("C", 2, "Shipped"), ("D", 3, "Pending")]
    assert (partition.merge.duplicates_dropped, again.merge.new, again.merge.carried_over) == (0, 1, 3)


def test_colliding_hashes_still_drop_exactly_the_repeated_versions(tmp_path):
    partition = colliding_writer(tmp_path)
    partition.write(rows(("A", 1, "Pending"), ("B", 4, "Shipped")))
    partition.write(rows(("A", 1, "Pending-2"), ("B", 2, "Pending"), ("C", 1, "Pending")))
    partition.commit()
    assert stored(tmp_path) == [("A", 1, "Pending-2"), ("B", 2, "Pending"), ("B", 4, "Shipped"), ("C", 1, "Pending")]
    assert partition.merge.duplicates_dropped == 1 and partition.merge.fetched == 4


def test_merging_works_one_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(partitions, "ROW_GROUP_ROWS", 2)
    first = writer(tmp_path)
    for batch in (rows(("A", 1, "Pending"), ("B", 1, "Pending")), rows(("C", 1, "Pending"), ("A", 2, "Shipped"))):
        first.write(batch)
    first.commit()
    second = writer(tmp_path)
    for batch in (rows(("B", 3, "Canceled"), ("D", 1, "Pending")), rows(("A", 2, "Shipped"), ("A", 2, "Shipped"))):
        second.write(batch)
    second.commit()
    path = partition_dir(tmp_path, "orders", DAY) / "part-0.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    assert pq.read_table(path).schema == SCHEMA
    assert stored(tmp_path) == [("A", 1, "Pending"), ("A", 2, "Shipped"), ("B", 1, "Pending"), ("B", 3, "Canceled"),
                                ("C", 1, "Pending"), ("D", 1, "Pending")]
    merge = second.merge
    assert (merge.duplicates_dropped, merge.fetched, merge.new, merge.refetched, merge.carried_over) == (1, 3, 2, 1, 3)
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]
