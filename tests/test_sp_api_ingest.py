"""ORDERS_SOURCE=sp-api through Dagster: searchOrders days land in the same tables, and the marts match MWS's."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orders_pipeline.cli.main import main as cli_main
from orders_pipeline.cli.output import EXIT_FAILED, EXIT_OK
from orders_pipeline.definitions import defs
from orders_pipeline.simulator import DEMO_MARKETPLACE_IDS, DEMO_SP_API_CREDENTIALS, Faults, MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import mart_path, partition_dir, read_manifest

from .conftest import FAST, assert_matches_simulator, day_bounds, read_partition, resource_for

REPO = Path(__file__).resolve().parents[1]
DAYS = [date(2024, 3, 4) + timedelta(days=offset) for offset in range(3)]


def use_sp_api(monkeypatch, simulator: MwsSimulator, **overrides: str) -> None:
    """The run's environment for the simulator's SP-API face, with the demo app's credentials."""
    demo = DEMO_SP_API_CREDENTIALS
    settings = {
        "ORDERS_SOURCE": "sp-api",
        "SP_API_ENDPOINT": simulator.url,
        "LWA_TOKEN_URL": f"{simulator.url}/auth/o2/token",
        "LWA_APP_ID": demo.app_id,
        "LWA_CLIENT_SECRET": demo.client_secret,
        "SP_API_REFRESH_TOKEN": demo.refresh_token,
        "SP_API_MARKETPLACE_IDS": ",".join(DEMO_MARKETPLACE_IDS),
        **overrides,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def run_ingest_job(instance: dg.DagsterInstance, resources: dict, **partitions) -> dg.ExecuteInProcessResult:
    """The code location's own ingest job, without step retries, for the partitions named (a key or range tags)."""
    return defs.resolve_job_def("mws_ingest").execute_in_process(
        instance=instance, resources=resources, raise_on_error=False,
        run_config={"execution": {"config": {"retries": {"disabled": {}}}}}, **partitions,
    )


def ingest(day: date, instance: dg.DagsterInstance, **resources) -> dg.ExecuteInProcessResult:
    """One day in one run."""
    return run_ingest_job(instance, resources, partition_key=day.isoformat())


def test_a_day_through_search_orders_lands_like_mws_and_names_its_source(data_root, monkeypatch):
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator)
        result = ingest(DAYS[0], instance)
        assert result.success
        assert_matches_simulator(data_root, simulator, DAYS[0])
        calls = simulator.stats.total_requests
    metadata = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("mws_orders")}
    assert metadata["orders"]["source"].value == "sp-api" and metadata["orders"]["method"].value == "searchOrders"
    manifest = read_manifest(partition_dir(data_root, "orders", DAYS[0]))
    assert (manifest["source"], manifest["method"], manifest["complete"]) == ("sp-api", "searchOrders", True)
    assert calls < 10  # a token and a few searchOrders pages, not one call per order


def test_the_same_truth_through_mws_and_search_orders_gives_the_same_marts(tmp_path, monkeypatch):
    """Units per SKU and day, revenue per channel and currency and the stuck orders agree, source for source."""
    marts = {}
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        for source in ("mws", "sp-api"):
            root = tmp_path / source
            monkeypatch.setenv("ORDERS_DATA_DIR", str(root))
            if source == "sp-api":
                use_sp_api(monkeypatch, simulator)
            for day in DAYS:
                resources = {"mws": resource_for(simulator)} if source == "mws" else {}
                assert ingest(day, instance, **resources).success
            assert defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance).success
            marts[source] = {
                "sku_daily_sales": _rows(root, "sku_daily_sales", "purchase_day, seller_sku, currency, units_ordered, units_shipped, revenue"),
                "sales_by_channel": _rows(root, "sales_by_channel", "purchase_day, sales_channel, fulfillment_channel, currency, orders, revenue"),
                "stuck_orders": _rows(root, "stuck_orders", "amazon_order_id, order_status, reason"),
            }
    for mart, rows in marts["mws"].items():
        assert rows == marts["sp-api"][mart], mart
        assert rows, mart


def _rows(root: Path, mart: str, columns: str) -> list[tuple]:
    return duckdb.sql(f"select {columns} from '{mart_path(root, mart)}' order by all").fetchall()


def test_wrong_lwa_credentials_fail_the_day_in_one_line_and_write_nothing(data_root, monkeypatch):
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator, LWA_CLIENT_SECRET="wrong-secret-123")
        result = ingest(DAYS[0], instance)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "invalid_client" in message and "LWA_APP_ID" in message and "wrong-secret-123" not in message
    assert not (data_root / "orders").exists()


def test_an_unknown_orders_source_is_refused_with_the_fix(data_root, monkeypatch):
    monkeypatch.setenv("ORDERS_SOURCE", "ebay")
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest(DAYS[0], instance)
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "ORDERS_SOURCE='ebay'" in failure.step_failure_data.user_failure_data.description


def run_contract_command(tmp_path: Path, *partitions: str) -> subprocess.CompletedProcess:
    """The README's `dagster asset materialize` command for the raw assets with ORDERS_SOURCE=sp-api, in a fresh
    process with no endpoint set; it must succeed."""
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "ORDERS_DATA_DIR": str(tmp_path / "data"),
           "ORDERS_SOURCE": "sp-api", "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "orders_pipeline.definitions",
               "--select", "orders,order_items", *partitions]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_the_contract_command_uses_the_embedded_sp_api_face_when_no_endpoint_is_set(tmp_path):
    done = run_contract_command(tmp_path, "--partition", "2024-03-03")
    assert "SP_API_ENDPOINT is not set: using the EMBEDDED SP-API SIMULATOR" in done.stdout + done.stderr
    orders = read_partition(tmp_path / "data", "orders", date(2024, 3, 3))
    assert orders and read_manifest(partition_dir(tmp_path / "data", "orders", date(2024, 3, 3)))["source"] == "sp-api"


@pytest.fixture(autouse=True)
def _no_mws_endpoint(monkeypatch):
    """These runs choose their API through the environment alone."""
    for name in ("MWS_ENDPOINT", "SP_API_ENDPOINT", "ORDERS_SOURCE"):
        monkeypatch.delenv(name, raising=False)


RANGE = [date(2024, 3, 1) + timedelta(days=offset) for offset in range(5)]


def ingest_range(days: list[date], instance: dg.DagsterInstance, **resources) -> dg.ExecuteInProcessResult:
    """The ingest job over a range of partitions in one run (the raw assets' single-run backfill policy)."""
    tags = {"dagster/asset_partition_range_start": days[0].isoformat(), "dagster/asset_partition_range_end": days[-1].isoformat()}
    return run_ingest_job(instance, resources, tags=tags)


def test_a_range_goes_through_one_report_and_lands_in_every_day(data_root, monkeypatch):
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator)
        result = ingest_range(RANGE, instance)
        assert result.success
        truth = {day: simulator.expected_orders(*day_bounds(day)) for day in RANGE}
        calls = simulator.stats.requests_by_action
    for day in RANGE:
        stored = read_partition(data_root, "orders", day)
        assert sorted(row["amazon_order_id"] for row in stored) == sorted(order["amazon_order_id"] for order in truth[day])
        items = read_partition(data_root, "order_items", day)
        assert sum(row["quantity_ordered"] for row in items) == sum(
            item["quantity_ordered"] for order in truth[day] for item in order["items"])
        manifest = read_manifest(partition_dir(data_root, "orders", day))
        assert manifest["method"] == "report GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL" and manifest["complete"]
    metadata = next(m.metadata for m in result.asset_materializations_for_node("mws_orders") if m.asset_key.path == ["orders"])
    assert metadata["days"].value == len(RANGE) and metadata["pages"].value == 1  # one report for the five days
    assert calls.get("createReport") == 1 and "searchOrders" not in calls


def test_a_range_on_mws_lands_every_day_in_one_run(data_root, simulator):
    with dg.DagsterInstance.ephemeral() as instance:
        result = ingest_range(RANGE[:3], instance, mws=resource_for(simulator))
        assert result.success
        for day in RANGE[:3]:
            assert_matches_simulator(data_root, simulator, day)
    assert len({m.partition for m in result.asset_materializations_for_node("mws_orders")}) == 3


def test_a_failed_report_fails_the_range_and_writes_nothing(data_root, monkeypatch):
    with MwsSimulator(SimulatorConfig(time_scale=FAST, faults=Faults(report_outcome="FATAL"))) as simulator, \
            dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator)
        result = ingest_range(RANGE, instance)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "FATAL" in failure.step_failure_data.user_failure_data.description
    assert not (data_root / "orders").exists()


def test_the_contract_range_command_runs_once_through_the_reports_api(tmp_path):
    run_contract_command(tmp_path, "--partition-range", "2024-03-01...2024-03-03")
    for day in RANGE[:3]:
        manifest = read_manifest(partition_dir(tmp_path / "data", "order_items", day))
        assert manifest["method"].startswith("report ") and manifest["rows"] > 0


def test_status_checks_the_sp_api_credentials_and_order_live_uses_get_order(data_root, monkeypatch, capsys):
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator)
        assert ingest(DAYS[0], instance).success
        order_id = read_partition(data_root, "orders", DAYS[0])[0]["amazon_order_id"]
        assert cli_main(["status"]) == EXIT_OK
        assert "answers these SP-API credentials" in capsys.readouterr().out
        assert cli_main(["order", order_id, "--live"]) == EXIT_OK
        assert f"Live (getOrder from {simulator.url}" in capsys.readouterr().out
        monkeypatch.setenv("LWA_CLIENT_SECRET", "wrong-secret-456")
        assert cli_main(["status"]) == EXIT_FAILED
        error = capsys.readouterr().err
    assert "invalid_client" in error and "wrong-secret-456" not in error and len(error.strip().splitlines()) == 1


def test_a_report_backfill_gives_the_marts_search_orders_gives_except_what_a_report_cannot_know(tmp_path, monkeypatch):
    """Units and revenue per SKU, day and channel agree. A report cannot know the marketplace of a Non-Amazon order
    in a multi-marketplace report, so an unpriced (Pending) line of one has no currency there; nothing else differs.
    (`stuck_orders` differs too: a report has no latest_ship_date.)"""
    marts = {}
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator, dg.DagsterInstance.ephemeral() as instance:
        use_sp_api(monkeypatch, simulator)
        for method in ("searchOrders", "report"):
            root = tmp_path / method
            monkeypatch.setenv("ORDERS_DATA_DIR", str(root))
            if method == "report":
                assert ingest_range(RANGE, instance).success
            else:
                for day in RANGE:
                    assert ingest(day, instance).success
            assert defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance).success
            marts[method] = {
                "sku_daily_sales": _rows(root, "sku_daily_sales", "purchase_day, seller_sku, units_ordered, revenue, currency"),
                "sales_by_channel": _rows(root, "sales_by_channel", "purchase_day, sales_channel, fulfillment_channel, units_ordered, revenue, currency"),
            }
    for mart, rows in marts["searchOrders"].items():
        by_report = marts["report"][mart]
        assert rows and by_report, mart
        only_search, only_report = set(rows) - set(by_report), set(by_report) - set(rows)
        assert all(row[-1] is None and row[-2] == 0 for row in only_report), (mart, only_report)  # unpriced, no currency
        unpriced = {row[:-1] for row in only_report}
        assert all(row[-2] == 0 and row[:-1] in unpriced for row in only_search), (mart, only_search)
