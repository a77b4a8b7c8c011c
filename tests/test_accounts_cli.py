"""The `orders-pipeline` command with an accounts file: backfill every account or one, status per account, order lookup
by account; without the file it is unchanged (tests/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from orders_pipeline.cli.main import main
from orders_pipeline.cli.output import EXIT_OK, EXIT_USAGE
from orders_pipeline.storage.layout import partition_dir, read_manifest

SCRIPT = Path(sys.executable).with_name("orders-pipeline")

ACCOUNTS = 'accounts:\n  - name: alpha\n    source: mws\n  - name: beta\n    source: sp-api\n'


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def command(tmp_path: Path, data_root: Path):
    """The console script in a fresh process (the code location reads the accounts file when it loads)."""
    (tmp_path / "accounts.yaml").write_text(ACCOUNTS)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MWS_", "SP_API_", "LWA_", "ORDERS_", "DAGSTER_"))}
    env.update(ORDERS_ACCOUNTS_FILE=str(tmp_path / "accounts.yaml"), ORDERS_DATA_DIR=str(data_root), DAGSTER_HOME=str(tmp_path / "home"))

    def run(*argv: str) -> tuple[int, str, str]:
        done = subprocess.run([str(SCRIPT), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout, done.stderr

    return run


def test_backfill_status_and_order_understand_accounts(data_root, tmp_path):
    run = command(tmp_path, data_root)

    code, out, err = run("backfill", "2024-03-03", "2024-03-03", "--no-marts", "--account", "nope")
    assert code == EXIT_USAGE and "--account nope: no such account" in err and "lists alpha, beta" in err

    code, out, err = run("backfill", "2024-03-03", "2024-03-03", "--no-marts")
    assert code == EXIT_OK, err
    assert "2 account(s) (alpha, beta)" in out and "[1/2] alpha 2024-03-03" in out and "[2/2] beta 2024-03-03" in out
    code, out, err = run("backfill", "2024-03-04", "2024-03-04", "--no-marts", "--account", "beta")
    assert code == EXIT_OK and "[1/1] beta 2024-03-04" in out and "alpha 2024-03-04" not in out
    assert sorted(p.relative_to(data_root).as_posix() for p in data_root.glob("orders/*/*")) == [
        "orders/account=alpha/_source.json", "orders/account=alpha/dt=2024-03-03",
        "orders/account=beta/_source.json", "orders/account=beta/dt=2024-03-03", "orders/account=beta/dt=2024-03-04",
    ]

    code, out, err = run("status", "--days", "2")
    assert code == EXIT_OK, err
    rows = [line.split() for line in out.splitlines() if line.startswith(("alpha ", "beta "))]
    assert [row[:3] for row in rows] == [["alpha", "orders", "1"], ["alpha", "order_items", "1"], ["beta", "orders", "2"], ["beta", "order_items", "2"]]
    assert "account beta: day" in out and "API (alpha): no endpoint" in out

    order_id = duckdb.sql(f"select amazon_order_id from '{data_root}/orders/account=beta/dt=2024-03-04/*.parquet' limit 1").fetchall()[0][0]
    code, out, err = run("order", order_id)
    assert code == EXIT_OK and f"Order {order_id} (account beta)" in out and "dt=2024-03-04" in out
    code, out, err = run("order", order_id, "--account", "alpha")
    assert code != EXIT_OK and "is not in the stored data" in err


def test_account_arguments_without_an_accounts_file_are_usage_errors(capsys, data_root, monkeypatch):
    monkeypatch.delenv("ORDERS_ACCOUNTS_FILE", raising=False)
    code, out, err = run(capsys, "status", "--account", "alpha")
    assert code == EXIT_USAGE and "ORDERS_ACCOUNTS_FILE is not set" in err


def test_a_range_backfill_takes_an_sp_api_account_s_days_in_one_reports_run_and_mws_days_one_by_one(data_root, tmp_path):
    run = command(tmp_path, data_root)

    code, out, err = run("backfill", "2024-03-01", "2024-03-03", "--no-marts")

    assert code == EXIT_OK, err
    runs = [line.split("  ")[0] for line in out.splitlines() if line.startswith("[")]
    assert runs == ["[1/4] alpha 2024-03-01", "[2/4] alpha 2024-03-02", "[3/4] alpha 2024-03-03",
                    "[4/4] beta 2024-03-01...2024-03-03"]
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        assert read_manifest(partition_dir(data_root, "orders", date.fromisoformat(day), "beta"))["method"].startswith("report")
        assert read_manifest(partition_dir(data_root, "orders", date.fromisoformat(day), "alpha"))["method"] == "ListOrders + ListOrderItems"
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:  # the UI's grid shows every day of both
        materialized = instance.get_materialized_partitions(dg.AssetKey("orders"))
    assert materialized == {f"{account}|2024-03-0{n}" for account in ("alpha", "beta") for n in (1, 2, 3)}
