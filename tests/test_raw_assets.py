"""The raw `orders` / `order_items` assets through Dagster against the simulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orders_pipeline.assets.raw import ORDER_ITEMS, ORDERS, mws_orders
from orders_pipeline.definitions import defs
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig
from orders_pipeline.storage import partition_dir

from .conftest import FAST, assert_matches_simulator, read_partition, resource_for

DAY = date(2024, 3, 3)
REPO = Path(__file__).resolve().parents[1]


def materialize(resource, day: date = DAY, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([mws_orders], partition_key=day.isoformat(), resources={"mws": resource}, **kwargs)


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
    assert checks == {"no_quarantined_values": True, "unique_order_ids": True, "items_have_orders": True, "unique_order_item_ids": True}


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
