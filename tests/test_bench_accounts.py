"""The many-accounts benchmark's core, on two tiny accounts: each account's day lands in its own data dir, and the
counts it reports agree with the simulators', the Parquet files and each other (no timing is asserted)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """benchmarks/bench_accounts.py as a module (the scripts import their harness by its bare name)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_accounts")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_two_accounts_side_by_side_report_consistent_counts(bench, mode, tmp_path):
    settings = bench.Settings(time_scale=600.0, mws_orders=40, sp_api_orders=150)
    run = bench.run_accounts(bench.accounts(2), settings, mode, tmp_path)
    days = {day.name: day for day in run.days}
    assert sorted((day.name, day.source) for day in run.days) == [("seller-01", "mws"), ("seller-02", "sp-api")]
    for day in run.days:
        folders = [tmp_path / table / f"account={day.name}" for table in ("orders", "order_items")]
        orders, items = (pq.read_table(folder).num_rows for folder in folders)
        parquet = sum(path.stat().st_size for folder in folders for path in folder.rglob("*.parquet"))
        assert (day.orders, day.items, day.parquet_bytes) == (orders, items, parquet) and orders > 0
        assert day.server_throttled == day.client_throttled == 0 and day.ended > day.began
        assert (day.peak_rss_mb > 0) == (mode == "processes")  # a worker process's own peak; threads share one
    mws, sp_api = days["seller-01"], days["seller-02"]
    assert mws.calls == mws.server_requests == mws.order_pages + mws.item_pages  # ListOrders pages + one call per order
    assert mws.item_pages == mws.orders
    assert sp_api.calls == sp_api.order_pages and sp_api.server_requests == sp_api.calls + 1  # + the LWA token call
    assert run.wall >= max(day.ended - day.began for day in run.days) and run.pipeline_cpu > 0 < run.simulator_cpu
