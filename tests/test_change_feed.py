"""The change feed never forgets (issue 17): re-ingesting a day merges, so every order version observed stays.

Through Dagster, the simulator over real HTTP, real Parquet and the real SQL models: nightly runs see early
versions, the orders move on, a re-sweep of the early days returns only what is current there now.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date, datetime, time as clock_time, timedelta, timezone

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from orders_pipeline.definitions import defs
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import mart_path, partition_dir

from .conftest import FAST, assert_matches_simulator, day_bounds, read_partition, resource_for
from .reliability_support import CLOCKS, REPO, MovableClock, TunedMws, materialize, materialization_metadata

FIRST = date(2024, 3, 4)
DAYS = [FIRST + timedelta(days=offset) for offset in range(8)]


def tuned(simulator: MwsSimulator, clock: str) -> TunedMws:
    return TunedMws(**{**resource_for(simulator).__dict__, "clock": clock})


def after_midnight(day: date) -> datetime:
    """00:15 UTC the next day: when the nightly schedule fetches `day`."""
    return datetime.combine(day + timedelta(days=1), clock_time(0, 15), timezone.utc)


def stored_versions(root) -> set[tuple[str, datetime]]:
    """Every (order id, last_update_date) in the raw orders partitions."""
    table = pq.read_table(root / "orders", columns=["amazon_order_id", "last_update_date"])
    return set(zip(table.column(0).to_pylist(), table.column(1).to_pylist()))


def build_analytics(instance: dg.DagsterInstance) -> dict[str, str]:
    """Run the analytics job; {model: refresh metadata} of its incremental models."""
    result = defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance)
    assert result.success
    return {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata["refresh"].value
        for event in result.get_asset_materialization_events()
        if "refresh" in event.step_materialization_data.materialization.metadata
    }


def test_a_resweep_keeps_every_version_seen_before_and_stuck_hours_count_from_the_first(data_root):
    clock = MovableClock(after_midnight(DAYS[0]))
    CLOCKS["change-feed"] = clock
    config = SimulatorConfig(time_scale=FAST, orders_per_day=40, restated_share=0.6, clock=clock)
    with MwsSimulator(config) as sim, dg.DagsterInstance.ephemeral() as instance:
        resource = tuned(sim, "change-feed")
        for day in DAYS:  # the nightly runs, each just after its midnight
            clock.moment = after_midnight(day)
            assert materialize(resource, day).success
        observed = stored_versions(data_root)
        build_analytics(instance)

        clock.moment = after_midnight(DAYS[-1])  # the re-sweep of the three days before the last one
        carried = 0
        for day in DAYS[-4:-1]:
            result = materialize(resource, day)
            assert result.success
            carried += materialization_metadata(result)["orders"]["carried_over_versions"]
            assert_matches_simulator(data_root, sim, day, merged=True)
        assert carried > 0, "the re-sweep returned every version again: nothing to keep, the test proves nothing"
        assert stored_versions(data_root) == observed

        build_analytics(instance)
    with duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True) as warehouse:
        history = warehouse.sql(
            "select amazon_order_id, valid_from, order_status from stg_order_status_history order by amazon_order_id, valid_from"
        ).fetchall()
    assert {(order_id, valid_from) for order_id, valid_from, _ in history} == observed

    statuses: dict[str, list[tuple[datetime, str]]] = {}
    for order_id, valid_from, status in history:
        statuses.setdefault(order_id, []).append((valid_from, status))
    stuck = pq.read_table(mart_path(data_root, "stuck_orders")).to_pylist()
    as_of = max(valid_from for _, valid_from, _ in history)
    restated = 0
    for row in stuck:
        versions = statuses[row["amazon_order_id"]]
        current = versions[-1][1]
        first_of_status = versions[-1][0]
        for valid_from, status in reversed(versions):
            if status != current:
                break
            first_of_status = valid_from
        restated += sum(status == current for _, status in versions) > 1
        assert row["status_since"] == first_of_status, row["amazon_order_id"]
        assert abs(row["hours_in_status"] - (as_of - first_of_status).total_seconds() / 3600) < 0.01
    assert restated > 0, "no stuck order was updated twice in its status"


def test_completing_today_later_keeps_the_mornings_versions_and_counts_each_order_once(data_root):
    today = date(2024, 3, 3)
    clock = MovableClock(datetime(2024, 3, 3, 11, 0, tzinfo=timezone.utc))
    CLOCKS["today-feed"] = clock
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=80, clock=clock)) as sim, \
            dg.DagsterInstance.ephemeral() as instance:
        resource = tuned(sim, "today-feed")
        assert materialize(resource, today).success
        morning = {t: read_partition(data_root, t, today) for t in ("orders", "order_items")}

        clock.moment = datetime(2024, 3, 4, 0, 30, tzinfo=timezone.utc)
        result = materialize(resource, today)
        assert result.success
        assert_matches_simulator(data_root, sim, today)
        current = sim.expected_orders(*day_bounds(today))
        build_analytics(instance)
    with duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True) as warehouse:
        items = warehouse.sql("select amazon_order_id, order_item_id, quantity_ordered from stg_order_items").fetchall()
    # two versions of an order in one partition: only the current one's items count
    assert sorted(items) == sorted((order["amazon_order_id"], item["order_item_id"], item["quantity_ordered"])
                                   for order in current for item in order["items"])
    metadata = materialization_metadata(result)["orders"]
    assert metadata["complete"] is True and metadata["carried_over_versions"] > 0
    for table, rows in morning.items():
        stored = read_partition(data_root, table, today)
        assert all(row in stored for row in rows), table
    evening = {(row["amazon_order_id"], row["last_update_date"]) for row in read_partition(data_root, "orders", today)}
    assert len(evening) == len(read_partition(data_root, "orders", today)) > len(morning["orders"])


def test_a_merge_that_adds_no_version_triggers_no_recompute(data_root):
    day = date(2024, 3, 3)
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=30)) as sim, dg.DagsterInstance.ephemeral() as instance:
        assert materialize(resource_for(sim), day).success
        build_analytics(instance)
        path = partition_dir(data_root, "orders", day) / "part-0.parquet"
        before = path.stat()
        again = materialize(resource_for(sim), day)
        assert again.success
        assert materialization_metadata(again)["orders"]["merge"].startswith("unchanged")
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        refresh = build_analytics(instance)
    assert refresh["stg_orders"] == "incremental: 0 amazon_order_id value(s) recomputed"


_KILLED_MERGE = """
import os, sys, time
from datetime import date
from pathlib import Path
import orders_pipeline.storage.partitions as storage
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.simulator import DEMO_CREDENTIALS as C, DEMO_MARKETPLACE_IDS
storage.ROW_GROUP_ROWS = 1  # many row groups, so the merge copy takes a while
rewrite = storage.PartitionWriter._rewrite_temp
def announced(self, *args):
    Path(sys.argv[4]).write_text("merging")  # the parent kills us from here on
    time.sleep(0.5)
    rewrite(self, *args)
    time.sleep(60)
storage.PartitionWriter._rewrite_temp = announced
client = MwsOrdersClient(sys.argv[1], MwsCredentials(C.access_key_id, C.secret_key, C.seller_id), DEMO_MARKETPLACE_IDS)
ingest_day(MwsOrdersSource(client), date.fromisoformat(sys.argv[3]), Path(sys.argv[2]))
"""


def test_sigkill_during_a_merge_leaves_the_old_partition_intact(data_root, tmp_path):
    day = date(2024, 3, 3)
    clock = MovableClock(datetime(2024, 3, 3, 12, 0, tzinfo=timezone.utc))
    CLOCKS["before-merge"] = clock
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=60, clock=clock)) as sim:
        assert materialize(tuned(sim, "before-merge"), day).success
        old = {t: (partition_dir(data_root, t, day) / "part-0.parquet").read_bytes() for t in ("orders", "order_items")}
        clock.moment = datetime(2024, 3, 4, 0, 30, tzinfo=timezone.utc)  # the evening run has versions to merge
        script, signal_file = tmp_path / "merge_once.py", tmp_path / "merging"
        script.write_text(_KILLED_MERGE)
        child = subprocess.Popen([sys.executable, str(script), sim.url, str(data_root), day.isoformat(), str(signal_file)], cwd=REPO)
        deadline = time.monotonic() + 60
        try:
            while not signal_file.exists():
                assert child.poll() is None, "the run ended before it merged"
                assert time.monotonic() < deadline, "the merge never started"
                time.sleep(0.02)
            time.sleep(0.7)  # inside the merge copy, or just after it
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(10)
    assert child.returncode == -signal.SIGKILL
    for table, content in old.items():
        directory = partition_dir(data_root, table, day)
        assert [p.name for p in directory.glob("*.parquet")] == ["part-0.parquet"]
        assert (directory / "part-0.parquet").read_bytes() == content
    assert list(partition_dir(data_root, "orders", day).glob(".tmp-*"))  # the killed merge's temp files, never read
