"""ORDERS_DATA_DIR=s3://bucket/prefix against a real S3 protocol server (moto) on loopback: Dagster runs publish days
and marts as objects any reader can read, re-runs are idempotent, a killed upload leaves the old day, and a bad
bucket or credential fails in one line before any API call."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orders_pipeline.analytics.build import build_models
from orders_pipeline.cli.main import main
from orders_pipeline.cli.output import EXIT_OK
from orders_pipeline.cli.status import partition_statuses
from orders_pipeline.definitions import defs
from orders_pipeline.defs.resources import MwsResource
from orders_pipeline.defs.sensors import mart_alerts_sensor
from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import MANIFEST_FILE, data_dir, partition_dir, read_manifest, write_manifest
from orders_pipeline.storage.object_store import ObjectStoreError, remote_store

from .conftest import FAST, resource_for
from .s3_support import S3Server, StallingRelay, moto_server

DAYS = [date(2024, 3, 3), date(2024, 3, 4)]
PREFIX = "shop/prod"
MARTS = ("sku_daily_sales", "sales_by_channel", "sku_sales_trends", "sku_channel_trends", "stuck_orders",
         "sku_stuck_summary", "sku_trend_anomalies")


@pytest.fixture(scope="module")
def s3_server() -> S3Server:
    with moto_server() as server:
        yield server


@dataclass
class S3DataDir:
    """An s3:// data dir in a fresh bucket, this test's mirror of it, and a filesystem to inspect the store with."""

    server: S3Server
    uri: str
    base: str
    mirror: Path
    fs: pafs.S3FileSystem

    def keys(self) -> dict[str, int]:
        return self.server.keys(self.base)

    def read(self, key: str) -> pa.Table:
        return pq.read_table(f"{self.base}/{key}", filesystem=self.fs)


@pytest.fixture
def s3_data_dir(s3_server, tmp_path, monkeypatch) -> S3DataDir:
    bucket = s3_server.new_bucket()
    uri = f"s3://{bucket}/{PREFIX}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": s3_server.url, "ORDERS_DATA_DIR": uri,
                        "ORDERS_LOCAL_DIR": str(tmp_path / "mirror")}.items():
        monkeypatch.setenv(name, value)
    return S3DataDir(s3_server, uri, f"{bucket}/{PREFIX}", tmp_path / "mirror", s3_server.filesystem())


def ingest(simulator, day: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [defs.get_assets_def("orders")], partition_key=day.isoformat(), raise_on_error=False,
        resources={"mws": resource_for(simulator), "sp_api": SpApiResource()},
    )


def build_analytics(instance: dg.DagsterInstance) -> None:
    assert defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance).success


def day_keys(day: date) -> set[str]:
    return {f"{table}/dt={day}/{name}" for table in ("orders", "order_items") for name in ("part-0.parquet", MANIFEST_FILE)}


def same_rows(con: duckdb.DuckDBPyConnection, left: pa.Table, right: pa.Table) -> bool:
    """Equal as multisets of rows (column order of `left`)."""
    con.register("l", left)
    con.register("r", right.select(left.column_names))
    differing = con.execute("select count(*) from ((from l except all from r) union all (from r except all from l))")
    return left.num_rows == right.num_rows and differing.fetchall() == [(0,)]


def test_days_land_as_objects_and_marts_built_from_them_equal_a_local_build(s3_data_dir, simulator, tmp_path, monkeypatch):
    assert data_dir() == s3_data_dir.mirror
    for day in DAYS:
        assert ingest(simulator, day).success
    keys = s3_data_dir.keys()
    assert set(keys) == {"_source.json"} | day_keys(DAYS[0]) | day_keys(DAYS[1])
    for day in DAYS:  # every object reads back over S3 as the day the run committed
        for table in ("orders", "order_items"):
            published = s3_data_dir.read(f"{table}/dt={day}/part-0.parquet")
            assert published.equals(pq.read_table(partition_dir(s3_data_dir.mirror, table, day) / "part-0.parquet"))
            manifest = read_manifest(partition_dir(s3_data_dir.mirror, table, day))
            assert manifest["rows"] == published.num_rows > 0 and manifest["complete"]

    with dg.DagsterInstance.ephemeral() as instance:
        build_analytics(instance)
    assert {f"marts/{mart}.parquet" for mart in MARTS} <= set(s3_data_dir.keys())
    assert {"reports/sku_trends.svg", "reports/sales_by_channel.svg"} <= set(s3_data_dir.keys())
    assert not any(key.startswith(("_state", "warehouse")) for key in s3_data_dir.keys())  # both stay local

    local = tmp_path / "local data"
    monkeypatch.setenv("ORDERS_DATA_DIR", str(local))
    for day in DAYS:
        assert ingest(simulator, day).success
    build_models(local)
    with duckdb.connect() as con:
        for mart in MARTS:
            local_mart = pq.read_table(local / "marts" / f"{mart}.parquet")
            assert same_rows(con, s3_data_dir.read(f"marts/{mart}.parquet"), local_mart), mart
        # the warehouse file is local, and its views read the mirror
        with duckdb.connect(str(s3_data_dir.mirror / "warehouse.duckdb"), read_only=True) as warehouse:
            ((rows,),) = warehouse.execute("select count(*) from sales_by_channel").fetchall()
            ((orders,),) = warehouse.execute("select count(*) from orders").fetchall()
        assert rows == s3_data_dir.read("marts/sales_by_channel.parquet").num_rows
        # the README's way to query the store with DuckDB without httpfs: a pyarrow dataset over S3
        orders_on_s3 = ds.dataset(f"{s3_data_dir.base}/orders", filesystem=s3_data_dir.fs, format="parquet",
                                  partitioning="hive")
        con.register("orders_on_s3", orders_on_s3)
        assert con.execute("select count(*) from orders_on_s3").fetchall() == [(orders,)]


def test_a_rerun_is_idempotent_and_removes_stale_objects(s3_data_dir, simulator):
    day = DAYS[0]
    assert ingest(simulator, day).success
    before = {key: s3_data_dir.read(key) for key in day_keys(day) if key.endswith(".parquet")}
    stale = f"{s3_data_dir.base}/orders/dt={day}/part-1.parquet"
    pq.write_table(before[f"orders/dt={day}/part-0.parquet"], stale, filesystem=s3_data_dir.fs)

    assert ingest(simulator, day).success
    assert set(s3_data_dir.keys()) == {"_source.json"} | day_keys(day)  # no new object, the stale one removed
    for key, table in before.items():
        assert s3_data_dir.read(key).equals(table)  # each version once: the re-run merged nothing new
    orders = s3_data_dir.read(f"orders/dt={day}/part-0.parquet")
    versions = set(zip(orders.column("amazon_order_id").to_pylist(), orders.column("last_update_date").to_pylist()))
    assert len(versions) == orders.num_rows


def test_a_pull_follows_the_store_committed_days_only(s3_data_dir, simulator, tmp_path, monkeypatch):
    """Another machine's mirror gets the committed days, loses the days deleted from the store, and never sees a day
    whose manifest was not written."""
    for day in DAYS:
        assert ingest(simulator, day).success
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "other machine"))
    other = remote_store()
    assert sorted(other.pull_raw()) == sorted(f"{table}/dt={day}" for day in DAYS for table in ("orders", "order_items"))
    assert other.pull_raw() == []  # in sync: a second pull fetches nothing
    for table in ("orders", "order_items"):
        assert pq.read_table(partition_dir(other.mirror, table, DAYS[0])).equals(
            pq.read_table(partition_dir(s3_data_dir.mirror, table, DAYS[0])))

    s3_data_dir.fs.delete_dir_contents(f"{s3_data_dir.base}/orders/dt={DAYS[1]}")
    s3_data_dir.fs.delete_file(f"{s3_data_dir.base}/order_items/dt={DAYS[1]}/{MANIFEST_FILE}")
    other.pull_raw()
    for table in ("orders", "order_items"):
        assert [status.day for status in partition_statuses(other.mirror, table)] == [DAYS[0]]
        assert all(status.state == "complete" for status in partition_statuses(other.mirror, table))


def test_a_push_killed_mid_upload_leaves_the_old_day_readable_and_complete(s3_data_dir, s3_server, simulator, tmp_path,
                                                                          monkeypatch):
    day = DAYS[0]
    assert ingest(simulator, day).success
    old = {table: s3_data_dir.read(f"{table}/dt={day}/part-0.parquet") for table in ("orders", "order_items")}

    # a new version of the day, committed in the mirror, whose items object takes ~24 MB to upload
    folder = partition_dir(s3_data_dir.mirror, "order_items", day)
    items = old["order_items"]
    padding = items.take(np.zeros(24_000, dtype=np.int64))
    padding = padding.set_column(padding.schema.get_field_index("title"), "title",
                                 pa.array([os.urandom(500).hex() for _ in range(padding.num_rows)]))
    pq.write_table(pa.concat_tables([items, padding]), folder / "part-0.parquet", compression="none")
    write_manifest(folder, {**read_manifest(folder), "rows": items.num_rows + padding.num_rows})

    relay = StallingRelay(int(s3_server.url.rsplit(":", 1)[1]), limit=8 * 2**20)
    push = ("from orders_pipeline.storage.layout import data_dir, partition_dir\n"
            "from orders_pipeline.storage.object_store import remote_store\n"
            f"from datetime import date\nday = date.fromisoformat('{day}')\nstore = remote_store()\n"
            "store.push_partitions([partition_dir(data_dir(), t, day) for t in ('order_items', 'orders')])\n")
    process = subprocess.Popen([sys.executable, "-c", push], env={**os.environ, "AWS_ENDPOINT_URL": relay.url})
    try:
        assert relay.stalled.wait(120), "the push never got past 8 MB"
        process.send_signal(signal.SIGKILL)
        assert process.wait(60) == -signal.SIGKILL
    finally:
        process.kill()
        relay.close()

    for table in ("orders", "order_items"):
        assert s3_data_dir.read(f"{table}/dt={day}/part-0.parquet").equals(old[table])
    reader = tmp_path / "reader"
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(reader))
    remote_store().pull_raw()
    for table in ("orders", "order_items"):
        (status,) = partition_statuses(reader, table)
        assert (status.state, status.rows) == ("complete", old[table].num_rows)


def test_an_unknown_bucket_or_a_refused_credential_fails_in_one_line_before_any_api_call(s3_data_dir, s3_server, simulator,
                                                                                         monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", "s3://no-such-bucket-here/orders")
    result = ingest(simulator, DAYS[0])
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message.strip()
    assert "bucket 'no-such-bucket-here' does not exist" in message and "\n" not in message

    monkeypatch.setenv("ORDERS_DATA_DIR", s3_data_dir.uri)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret")
    with s3_server.authenticating():
        with pytest.raises(ObjectStoreError) as refused:
            remote_store()
        result = ingest(simulator, DAYS[0])
    assert "check AWS_ACCESS_KEY_ID" in str(refused.value) and "a-wrong-secret" not in str(refused.value)
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "check AWS_ACCESS_KEY_ID" in failure.step_failure_data.error.message
    assert simulator.stats.total_requests == 0
    assert s3_data_dir.keys() == {}


def test_a_mirror_folder_holding_other_data_is_refused(s3_data_dir, tmp_path, monkeypatch):
    foreign = tmp_path / "my local data"
    foreign.mkdir()
    (foreign / "orders").mkdir()
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(foreign))
    with pytest.raises(ObjectStoreError, match="is not empty and is no mirror of"):
        remote_store()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".write-probe-1").touch()  # another run's probe or temp file does not make a folder foreign
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(fresh))
    assert remote_store().mirror == fresh
    monkeypatch.setenv("ORDERS_DATA_DIR", s3_data_dir.uri.replace(PREFIX, "another/prefix"))
    with pytest.raises(ObjectStoreError, match="mirrors another store"):
        remote_store()


def test_status_and_order_on_another_machine_read_the_store(s3_data_dir, simulator, tmp_path, monkeypatch, capsys):
    for day in DAYS:
        assert ingest(simulator, day).success
    order_id = s3_data_dir.read(f"orders/dt={DAYS[1]}/part-0.parquet").column("amazon_order_id")[0].as_py()
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "laptop"))
    assert main(["status", "--days", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"Data directory: {tmp_path / 'laptop'}" in out
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("2024-03-0")] == [
        [str(DAYS[0]), "complete"], [str(DAYS[1]), "complete"]]
    assert main(["order", order_id]) == EXIT_OK
    assert f"Order {order_id}:" in capsys.readouterr().out


def test_a_build_pull_leaves_alone_a_day_a_raw_run_of_this_machine_holds(s3_data_dir, simulator):
    """Between a raw run's local commit and its push, the day in the mirror is ahead of the store: a concurrent
    build's pull must not put the store's older copy back (the push would then publish it, losing the merge)."""
    day = DAYS[0]
    assert ingest(simulator, day).success
    folder = partition_dir(s3_data_dir.mirror, "orders", day)
    run, build = remote_store(), remote_store()
    with run.checked_out([folder]):
        committed = pq.read_table(folder / "part-0.parquet")
        pq.write_table(committed.slice(0, 1), folder / "part-0.parquet")  # the run's new local commit
        assert build.pull_raw() == []
        assert pq.read_table(folder / "part-0.parquet").num_rows == 1
    assert build.pull_raw() == [f"orders/dt={day}"]  # once released, the store (the truth) wins
    assert pq.read_table(folder / "part-0.parquet").equals(committed)


def test_the_source_marker_travels_with_the_store(s3_data_dir, simulator, tmp_path, monkeypatch):
    """Real data pushed from one machine makes another machine's demo run refuse, before any API call."""
    assert ingest(simulator, DAYS[0]).success
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "demo laptop"))
    monkeypatch.delenv("MWS_ENDPOINT", raising=False)
    result = dg.materialize([defs.get_assets_def("orders")], partition_key=DAYS[1].isoformat(), raise_on_error=False,
                            resources={"mws": MwsResource(), "sp_api": SpApiResource()})
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "holds real data from 127.0.0.1" in failure.step_failure_data.error.message
    assert not any(key.startswith(f"orders/dt={DAYS[1]}") for key in s3_data_dir.keys())


def test_the_alert_sensor_and_run_of_another_machine_read_the_marts_from_the_store(s3_data_dir, simulator, tmp_path,
                                                                                    monkeypatch):
    """The marts' recorded paths are the building machine's mirror; a daemon or run elsewhere pulls the marts."""
    just_after = datetime(2024, 3, 5, 0, 15, tzinfo=timezone.utc)
    with MwsSimulator(SimulatorConfig(time_scale=FAST, clock=lambda: just_after)) as live:
        for day in DAYS:  # fetched just after the days, as the schedule would: some orders are still in progress
            assert ingest(live, day).success
    with dg.DagsterInstance.ephemeral() as instance:
        build_analytics(instance)
        shutil.rmtree(s3_data_dir.mirror)  # the builder's pod is gone
        monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "daemon"))
        (request,) = mart_alerts_sensor(dg.build_sensor_context(instance=instance)).run_requests
        config = request.run_config["ops"]["mart_alerts"]["config"]
        stuck = s3_data_dir.read("marts/stuck_orders.parquet").column("amazon_order_id").to_pylist()
        assert stuck and sorted(config["new_stuck_order_ids"]) == sorted(stuck)
        monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "alerts run"))
        run = defs.resolve_job_def("mart_alerts_job").execute_in_process(instance=instance, run_config=request.run_config)
    assert run.success
    (materialization,) = run.asset_materializations_for_node("mart_alerts")
    assert materialization.metadata["new_stuck_orders"].value == len(stuck)


def test_day_folders_with_an_account_level_travel_the_same_way(s3_data_dir, tmp_path, monkeypatch):
    """Push and pull take any partition folder of the mirror, so `<table>/account=NAME/dt=...` works unchanged."""
    store = remote_store()
    folders = [s3_data_dir.mirror / table / "account=acme-eu" / f"dt={DAYS[0]}" for table in ("order_items", "orders")]
    rows = pa.table({"amazon_order_id": ["111-0000000-0000001"]})
    with store.checked_out(folders):
        for folder in folders:
            folder.mkdir(parents=True)
            pq.write_table(rows, folder / "part-0.parquet")
            write_manifest(folder, {"rows": 1, "complete": True})
        store.push_partitions(folders)
    assert set(s3_data_dir.keys()) == {f"{table}/account=acme-eu/dt={DAYS[0]}/{name}"
                                       for table in ("orders", "order_items") for name in ("part-0.parquet", MANIFEST_FILE)}
    monkeypatch.setenv("ORDERS_LOCAL_DIR", str(tmp_path / "other machine"))
    other = remote_store()
    assert sorted(other.pull_raw()) == [f"{table}/account=acme-eu/dt={DAYS[0]}" for table in ("order_items", "orders")]
    assert pq.read_table(other.mirror / "orders" / "account=acme-eu" / f"dt={DAYS[0]}" / "part-0.parquet").equals(rows)
