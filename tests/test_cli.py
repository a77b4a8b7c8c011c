"""The `orders-pipeline` command against files produced by real materializations, and its exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from orders_pipeline.cli.main import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, main
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS
from orders_pipeline.storage.layout import MANIFEST_FILE, partition_dir

SCRIPT = Path(sys.executable).with_name("orders-pipeline")


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def use_endpoint(monkeypatch, simulator, secret_key: str = DEMO_CREDENTIALS.secret_key) -> None:
    monkeypatch.setenv("MWS_ENDPOINT", simulator.url)
    monkeypatch.setenv("MWS_ACCESS_KEY_ID", DEMO_CREDENTIALS.access_key_id)
    monkeypatch.setenv("MWS_SECRET_KEY", secret_key)
    monkeypatch.setenv("MWS_SELLER_ID", DEMO_CREDENTIALS.seller_id)
    monkeypatch.setenv("MWS_MARKETPLACE_IDS", ",".join(DEMO_MARKETPLACE_IDS))


def a_multi_version_order(root: Path) -> str:
    return duckdb.sql(
        f"select amazon_order_id from read_parquet('{root}/orders/*/*.parquet') group by 1 having count(*) > 1 order by 1 limit 1"
    ).fetchall()[0][0]


@pytest.mark.parametrize("command", ["demo", "simulator", "backfill", "status", "order", "query"])
def test_every_command_has_help_with_the_exit_codes(capsys, command):
    code, out = run(capsys, command, "--help")
    assert code == EXIT_OK
    assert f"orders-pipeline {command}" in out and "exit codes" in out and "3  not found" in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == EXIT_USAGE
    assert run(capsys, "backfill", "2024-3-1", "2024-03-02")[0] == EXIT_USAGE
    code, out = run(capsys, "backfill", "2024-03-05", "2024-03-01")
    assert code == EXIT_USAGE and "START <= END" in out


def test_status_lists_partitions_rows_and_marts(capsys, landed_env):
    code, out = run(capsys, "status")
    assert code == EXIT_OK
    days = len(landed_env.days)
    orders_line = next(line for line in out.splitlines() if line.startswith("orders "))
    assert orders_line.split()[1:6] == [str(days), str(landed_env.days[0]), str(landed_env.days[-1]), str(days), "0"]
    assert "stuck_orders" in out and "rows" in out
    assert "MWS_ENDPOINT is not set" in out


def test_status_tells_partial_and_unknown_partitions_apart(capsys, landed_env, tmp_path, monkeypatch):
    root = tmp_path / "data"
    for table in ("orders", "order_items"):
        for day in landed_env.days[:2]:
            shutil.copytree(partition_dir(landed_env.root, table, day), partition_dir(root, table, day))
    manifest = partition_dir(root, "orders", landed_env.days[1]) / MANIFEST_FILE
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "complete": False}))
    (partition_dir(root, "orders", landed_env.days[0]) / MANIFEST_FILE).unlink()
    monkeypatch.setenv("ORDERS_DATA_DIR", str(root))
    code, out = run(capsys, "status")
    assert code == EXIT_OK
    assert f"{landed_env.days[0]}  unknown" in out and f"{landed_env.days[1]}  partial" in out
    assert f"Partial days (re-run to complete): {landed_env.days[1]}" in out


def test_status_of_an_empty_data_dir_is_not_found(capsys, data_root):
    assert run(capsys, "status")[0] == EXIT_NOT_FOUND


def test_status_asks_the_configured_endpoint_for_its_service_status(capsys, landed_env, monkeypatch, simulator):
    use_endpoint(monkeypatch, simulator)
    code, out = run(capsys, "status", "--days", "0")
    assert code == EXIT_OK and "GetServiceStatus = GREEN" in out
    use_endpoint(monkeypatch, simulator, secret_key="wrong")
    code, out = run(capsys, "status", "--days", "0")
    assert code == EXIT_FAILED and "SignatureDoesNotMatch" in out and "wrong" not in out


def test_order_shows_the_status_history_and_items(capsys, landed_env):
    order_id = a_multi_version_order(landed_env.root)
    code, out = run(capsys, "order", order_id)
    assert code == EXIT_OK
    history = out.split("Status history")[1].split("Items of the latest version")[0]
    versions = duckdb.sql(
        f"select order_status from read_parquet('{landed_env.root}/orders/*/*.parquet') "
        f"where amazon_order_id = '{order_id}' order by last_update_date"
    ).fetchall()
    assert len(history.strip().splitlines()) == 1 + 1 + len(versions)  # title, header, one line per version
    assert [status for (status,) in versions] == [line.split()[2] for line in history.strip().splitlines()[2:]]
    assert "seller_sku" in out.split("Items of the latest version")[1]


def test_order_live_adds_get_order_and_unknown_orders_are_not_found(capsys, landed_env, monkeypatch, simulator):
    order_id = a_multi_version_order(landed_env.root)
    use_endpoint(monkeypatch, simulator)
    code, out = run(capsys, "order", order_id, "--live")
    assert code == EXIT_OK and f"Live (GetOrder from {simulator.url}" in out
    assert run(capsys, "order", "999-0000000-0000000")[0] == EXIT_NOT_FOUND


def test_query_prints_a_table_or_csv_and_reports_sql_errors(capsys, landed_env):
    code, out = run(capsys, "query", "select count(*) as n_orders from orders")
    total = duckdb.sql(f"select count(*) from read_parquet('{landed_env.root}/orders/*/*.parquet')").fetchall()[0][0]
    assert code == EXIT_OK and "n_orders" in out and str(total) in out
    code, out = run(capsys, "query", "select sales_channel from sales_by_channel group by 1 order by 1", "--csv")
    assert code == EXIT_OK and out.splitlines()[0] == "sales_channel" and "Amazon.com" in out
    code, out = run(capsys, "query", "select * from no_such_table")
    assert code == EXIT_FAILED and "no_such_table" in out


def test_query_without_a_warehouse_is_not_found(capsys, data_root):
    assert run(capsys, "query", "select 1")[0] == EXIT_NOT_FOUND


def test_backfill_runs_one_partition_per_day_with_progress_and_exits_1_if_a_day_fails(
    capsys, data_root, monkeypatch, simulator, tmp_path
):
    use_endpoint(monkeypatch, simulator)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    code, out = run(capsys, "backfill", "2024-03-01", "2024-03-02", "--no-marts")
    assert code == EXIT_OK
    assert [line[:6] for line in out.splitlines() if line.startswith("[")] == ["[1/2] ", "[2/2] "]
    assert out.count(" complete") == 2
    assert sorted(p.name for p in (data_root / "orders").iterdir()) == ["dt=2024-03-01", "dt=2024-03-02"]
    use_endpoint(monkeypatch, simulator, secret_key="wrong")
    code, out = run(capsys, "backfill", "2024-03-03", "2024-03-03", "--no-marts")
    assert code == EXIT_FAILED
    assert "FAILED" in out and "SignatureDoesNotMatch" in out and "wrong" not in out
    assert not (data_root / "orders" / "dt=2024-03-03").exists()


def test_the_console_script_returns_the_exit_codes(landed_env):
    ok = subprocess.run([str(SCRIPT), "query", "select 42 as answer"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == EXIT_OK and "42" in ok.stdout
    missing = subprocess.run([str(SCRIPT), "order", "nope"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == EXIT_NOT_FOUND


def test_backfill_merges_into_stored_days_and_replace_rebuilds_them(capsys, data_root, monkeypatch, simulator, tmp_path):
    use_endpoint(monkeypatch, simulator)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert run(capsys, "backfill", "2024-03-01", "2024-03-01", "--no-marts")[0] == EXIT_OK
    path = partition_dir(data_root, "orders", date(2024, 3, 1)) / "part-0.parquet"
    stored = pq.read_table(path)
    earlier = stored.slice(0, 1).set_column(  # a version an earlier run saw, one minute before the first one
        stored.schema.get_field_index("last_update_date"), "last_update_date",
        pc.subtract(stored.column("last_update_date").slice(0, 1), pa.scalar(timedelta(minutes=1), pa.duration("us"))))
    pq.write_table(pa.concat_tables([stored, earlier]), path)

    code, out = run(capsys, "backfill", "2024-03-01", "2024-03-01", "--no-marts")
    assert code == EXIT_OK and "merging into each day" in out and f"0 new versions, {stored.num_rows + 1:,} stored" in out
    assert pq.read_table(path).num_rows == stored.num_rows + 1

    code, out = run(capsys, "backfill", "2024-03-01", "2024-03-01", "--no-marts", "--replace")
    assert code == EXIT_OK and "replacing each day (--replace)" in out
    assert pq.read_table(path).num_rows == stored.num_rows


def test_an_unknown_orders_source_is_a_usage_error_before_anything_runs(capsys, data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERS_SOURCE", "sp_api")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    for argv in (["backfill", "2024-03-01", "2024-03-01", "--no-marts"], ["status"], ["demo"]):
        code, out = run(capsys, *argv)
        assert code == EXIT_USAGE and out == "error: ORDERS_SOURCE='sp_api': set it to mws or sp-api (default mws)\n", argv
    assert not (tmp_path / "home").exists() and not (data_root.exists() and any(data_root.iterdir()))
    monkeypatch.setenv("ORDERS_SOURCE", " SP-API ")  # case and spaces do not matter
    assert run(capsys, "status", "--days", "0")[0] != EXIT_USAGE
