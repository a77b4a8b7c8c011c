"""The demo command and its printed tour of the marts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from orders_pipeline.cli.main import main
from orders_pipeline.storage.layout import mart_path
from orders_pipeline.insights.summary import mart_summary

REPO = Path(__file__).resolve().parents[1]


def test_the_tour_names_the_best_seller_and_counts_stuck_orders(landed_env):
    sales = pq.read_table(mart_path(landed_env.root, "sku_daily_sales")).group_by("seller_sku").aggregate([("units_ordered", "sum")])
    best = sales.sort_by([("units_ordered_sum", "descending"), ("seller_sku", "ascending")]).to_pylist()[0]
    stuck = pq.read_metadata(mart_path(landed_env.root, "stuck_orders")).num_rows
    text = mart_summary(landed_env.root)
    best_line = text.split("Best-selling SKUs")[1].splitlines()[5]
    assert best["seller_sku"] in best_line and str(best["units_ordered_sum"]) in best_line
    assert f"{stuck} orders are stuck in all" in text
    for currency in pc.unique(pq.read_table(mart_path(landed_env.root, "sales_by_channel")).column("currency")).to_pylist():
        assert currency in text.split("Sales by channel")[1]


def test_demo_ingests_days_builds_marts_and_says_where_to_look(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MWS_ENDPOINT", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path / "data"))
    assert main(["demo", "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert "[1/2]" in out and "complete" in out and "[2/2]" in out and "partial (day still running)" in out
    assert "Best-selling SKUs" in out and "Stuck orders" in out and "dagster dev" in out
    assert len(list((tmp_path / "data" / "orders").glob("dt=*/part-0.parquet"))) == 2
    assert (tmp_path / "data" / "warehouse.duckdb").exists()


def test_the_warehouse_answers_the_duckdb_cli_installed_with_the_package(landed_env):
    """`duckdb data/warehouse.duckdb -c "from sales_by_channel"` works, with the CLI the package depends on."""
    cli = Path(sys.executable).with_name("duckdb")
    warehouse = landed_env.root / "warehouse.duckdb"
    command = [str(cli), "-csv", str(warehouse), "-c", "select count(*) as n from sales_by_channel"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["n", str(pq.read_metadata(mart_path(landed_env.root, "sales_by_channel")).num_rows)]


def test_the_contract_command_rebuilds_every_analytics_asset_from_what_has_landed(landed_env, tmp_path):
    """`dagster asset materialize ... --select 'group:analytics'`, run as users run it, on copied raw partitions."""
    root = tmp_path / "data"
    for table in ("orders", "order_items"):
        shutil.copytree(landed_env.root / table, root / table)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MWS_", "DAGSTER_HOME"))}
    env["ORDERS_DATA_DIR"] = str(root)
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "-m", "orders_pipeline.definitions", "--select", "group:analytics"]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    for mart in ("sku_daily_sales", "sku_sales_trends", "sales_by_channel", "sku_channel_trends", "stuck_orders", "sku_stuck_summary", "sku_trend_anomalies"):
        rebuilt, original = (pq.read_table(mart_path(base, mart)).to_pylist() for base in (root, landed_env.root))
        assert rebuilt and sorted(map(repr, rebuilt)) == sorted(map(repr, original)), mart  # same rows, any order
    assert (root / "warehouse.duckdb").exists()
