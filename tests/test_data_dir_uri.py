"""ORDERS_DATA_DIR as a filesystem URI: a local file:// URI through a real materialization; s3:// is worked on in a
local mirror (tests/test_object_store.py), other stores are refused."""

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


def test_an_s3_data_dir_works_in_a_local_mirror_and_other_stores_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", "s3://bucket/shop/orders")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ORDERS_LOCAL_DIR", raising=False)
    assert data_dir() == tmp_path / "cache" / "orders_pipeline" / "s3" / "bucket" / "shop" / "orders"
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "mirror"))
    assert data_dir() == tmp_path / "mirror"
    monkeypatch.setenv("ORDERS_DATA_DIR", "s3:///no-bucket")
    with pytest.raises(ValueError, match="write s3://bucket/prefix"):
        data_dir()
    monkeypatch.setenv("ORDERS_DATA_DIR", "gs://bucket/orders")
    with pytest.raises(ValueError, match="only local paths, file:// URIs and s3://|not a filesystem URI"):
        data_dir()
