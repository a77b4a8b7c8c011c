"""ORDERS_DATA_DIR as a filesystem URI: a local file:// URI through a real materialization; object stores refused."""

from datetime import date

import dagster as dg
import pytest

from orders_pipeline.definitions import defs
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.storage.layout import data_dir, partition_dir

from .conftest import read_partition, resource_for

DAY = date(2024, 3, 3)


def test_a_file_uri_data_dir_receives_the_partitions(tmp_path, monkeypatch, simulator):
    root = tmp_path / "uri root"
    monkeypatch.setenv("ORDERS_DATA_DIR", root.as_uri())
    assert data_dir() == root
    result = dg.materialize(
        [defs.get_assets_def("orders")],
        partition_key=DAY.isoformat(),
        resources={"mws": resource_for(simulator), "sp_api": SpApiResource()},
    )
    assert result.success
    assert (partition_dir(root, "orders", DAY) / "part-0.parquet").is_file()
    assert read_partition(root, "orders", DAY) and read_partition(root, "order_items", DAY)


def test_an_object_store_uri_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", "s3://bucket/orders")
    with pytest.raises(ValueError, match="atomic rename|not a filesystem URI"):
        data_dir()
