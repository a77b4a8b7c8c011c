"""The raw `orders` / `order_items` assets through Dagster against the simulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.defs.assets.raw import ORDER_ITEMS, ORDERS, mws_orders
from orders_pipeline.defs.assets.raw_checks import check_results
from orders_pipeline.definitions import defs
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import partition_dir

from .conftest import FAST, assert_matches_simulator, client_for, read_partition, resource_for

DAY = date(2024, 3, 3)
REPO = Path(__file__).resolve().parents[1]


def materialize(resource, day: date = DAY, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([mws_orders], partition_key=day.isoformat(), resources={"mws": resource, "sp_api": SpApiResource()}, **kwargs)


def test_a_day_lands_with_every_order_and_item_once_and_metadata(data_root, simulator):
    result = materialize(resource_for(simulator))
    assert result.success
    assert_matches_simulator(data_root, simulator, DAY)
    metadata = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("mws_orders")}
    orders_meta = metadata[ORDERS]
    assert orders_meta["complete"].value is True
    assert orders_meta["dagster/row_count"].value == len(read_partition(data_root, "orders", DAY))
    assert orders_meta["covered_until"].value == "2024-03-04T00:00:00+00:00"
    assert orders_meta["api_calls_ListOrderItems"].value == orders_meta["dagster/row_count"].value
    assert orders_meta["api_throttled_responses"].value == 0
    assert metadata[ORDER_ITEMS]["dagster/row_count"].value == len(read_partition(data_root, "order_items", DAY))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"no_quarantined_values": True, "each_order_version_once": True, "holds_every_order_version_fetched": True,
                      "each_item_version_once": True, "items_have_their_order_version": True}


def test_rerunning_a_partition_replaces_it_with_identical_content(data_root, simulator):
    assert materialize(resource_for(simulator)).success
    first = {table: read_partition(data_root, table, DAY) for table in ("orders", "order_items")}
    assert materialize(resource_for(simulator)).success
    second = {table: read_partition(data_root, table, DAY) for table in ("orders", "order_items")}
    assert first == second
    for table in ("orders", "order_items"):
        assert sorted(p.name for p in partition_dir(data_root, table, DAY).iterdir()) == ["_manifest.json", "part-0.parquet"]


def test_wrong_secret_fails_with_one_clear_message_and_writes_nothing(data_root, simulator):
    result = materialize(resource_for(simulator, secret_key="wrong-secret-123"), raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "SignatureDoesNotMatch" in message and "MWS_SECRET_KEY" in message and "RequestId" in message
    assert "wrong-secret-123" not in message
    assert not (data_root / "orders").exists() and not (data_root / "order_items").exists()


def test_endpoint_without_credentials_is_a_configuration_error(data_root, simulator):
    resource = resource_for(simulator, secret_key="", access_key_id="")
    result = materialize(resource, raise_on_error=False)
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "MWS_ACCESS_KEY_ID, MWS_SECRET_KEY are not" in failure.step_failure_data.user_failure_data.description


def test_definitions_load_with_the_ingest_schedule():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("mws_ingest") is not None
    assert defs.resolve_schedule_def("daily_ingest_schedule") is not None


def test_contract_command_writes_the_contract_files(tmp_path):
    """The exact command users and external tests rely on, against the embedded simulator."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MWS_", "DAGSTER_HOME"))}
    env["ORDERS_DATA_DIR"] = str(tmp_path / "out")
    command = [
        str(Path(sys.executable).with_name("dagster")),
        *"asset materialize -m orders_pipeline.definitions --select orders,order_items --partition 2024-03-03".split(),
    ]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "EMBEDDED MWS SIMULATOR" in completed.stderr
    embedded = MwsSimulator(SimulatorConfig(time_scale=FAST))  # same seed: same data as the embedded one
    assert_matches_simulator(tmp_path / "out", embedded, DAY)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.parquet")) == [
        "order_items/dt=2024-03-03/part-0.parquet",
        "orders/dt=2024-03-03/part-0.parquet",
    ]


@pytest.mark.parametrize("marketplace", ["A1VC38T7YXB528"])
def test_unknown_marketplace_fails_clearly(data_root, simulator, marketplace):
    result = materialize(resource_for(simulator, marketplace_ids=marketplace), raise_on_error=False)
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "InvalidParameterValue" in message and marketplace in message and "MWS_MARKETPLACE_IDS" in message
    assert not (data_root / "orders").exists()


def test_an_unconfigured_resource_reads_the_environment_when_the_run_starts(data_root, simulator, monkeypatch):
    from orders_pipeline.defs.resources import MwsResource
    from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS

    resource = MwsResource()  # as if the code location loaded before the variables were exported
    monkeypatch.setenv("MWS_ENDPOINT", simulator.url)
    monkeypatch.setenv("MWS_ACCESS_KEY_ID", DEMO_CREDENTIALS.access_key_id)
    monkeypatch.setenv("MWS_SECRET_KEY", DEMO_CREDENTIALS.secret_key)
    monkeypatch.setenv("MWS_SELLER_ID", DEMO_CREDENTIALS.seller_id)
    monkeypatch.setenv("MWS_MARKETPLACE_IDS", ",".join(DEMO_MARKETPLACE_IDS))
    result = materialize(resource)
    assert result.success
    metadata = next(m.metadata for m in result.asset_materializations_for_node("mws_orders") if m.asset_key == ORDERS)
    assert metadata["embedded_simulator"].value is False and metadata["endpoint"].value.startswith(simulator.url) and metadata["source"].value == "mws"
    assert simulator.stats.requests_by_action["ListOrders"] >= 1


def test_an_unusable_data_dir_fails_with_one_line_naming_orders_data_dir(tmp_path, simulator, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ORDERS_DATA_DIR", str(blocker / "data"))
    result = materialize(resource_for(simulator), raise_on_error=False)
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "ORDERS_DATA_DIR" in failure.step_failure_data.user_failure_data.description


def _published(root, table: str) -> pa.Table:
    return pq.read_table(partition_dir(root, table, DAY) / "part-0.parquet")


def _republish(root, table: str, rows: pa.Table) -> None:
    pq.write_table(rows, partition_dir(root, table, DAY) / "part-0.parquet")


def test_raw_checks_fail_when_the_published_files_disagree_with_the_fetch(data_root, simulator):
    """The checks read the files back: a repeated version, a lost version and an orphan item each fail one."""
    with client_for(simulator) as client:
        report = ingest_day(MwsOrdersSource(client), DAY, data_root)
    verdicts = lambda: {result.check_name: result.passed for result in check_results(data_root, [report])}  # noqa: E731
    assert all(verdicts().values())

    orders, items = _published(data_root, "orders"), _published(data_root, "order_items")
    _republish(data_root, "orders", pa.concat_tables([orders, orders.slice(0, 1)]))
    assert verdicts()["each_order_version_once"] is False
    _republish(data_root, "orders", orders.slice(1))  # a version the API returned is gone
    failed = {name for name, passed in verdicts().items() if not passed}
    assert {"holds_every_order_version_fetched", "items_have_their_order_version"} <= failed
    _republish(data_root, "orders", orders)
    _republish(data_root, "order_items", pa.concat_tables([items, items.slice(0, 1)]))
    assert verdicts()["each_item_version_once"] is False


def test_a_data_dir_that_cannot_be_written_fails_before_any_api_call(data_root, simulator, tmp_path, monkeypatch):
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("ORDERS_DATA_DIR", str(not_a_dir))
    result = materialize(resource_for(simulator), raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "check ORDERS_DATA_DIR" in failure.step_failure_data.user_failure_data.description
    assert simulator.stats.total_requests == 0
