"""Demo and real orders never share a data dir, and every process reads MWS_* from its own environment at run time.

"Real" here is any endpoint given as MWS_ENDPOINT: a simulator started explicitly, over real HTTP, stands in for MWS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orders_pipeline.cli.main import EXIT_FAILED, main
from orders_pipeline.definitions import defs
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator
from orders_pipeline.storage.layout import MANIFEST_FILE, partition_dir

DAY, NEXT_DAY = date(2024, 3, 3), date(2024, 3, 4)
MARKER_FILE = "_source.json"  # the documented marker at the data-dir root
REPO = Path(__file__).resolve().parents[1]


def endpoint_environment(simulator: MwsSimulator) -> dict[str, str]:
    """The MWS_* variables of a production run, pointing at `simulator`."""
    return {
        "MWS_ENDPOINT": simulator.url,
        "MWS_ACCESS_KEY_ID": DEMO_CREDENTIALS.access_key_id,
        "MWS_SECRET_KEY": DEMO_CREDENTIALS.secret_key,
        "MWS_SELLER_ID": DEMO_CREDENTIALS.seller_id,
        "MWS_MARKETPLACE_IDS": ",".join(DEMO_MARKETPLACE_IDS),
    }


def set_environment(monkeypatch, variables: dict[str, str]) -> None:
    """Exactly `variables` among the MWS_* variables, as a run's process would see them."""
    for name in ("MWS_ENDPOINT", "MWS_ACCESS_KEY_ID", "MWS_SECRET_KEY", "MWS_SELLER_ID", "MWS_AUTH_TOKEN", "MWS_MARKETPLACE_IDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def ingest(day: date) -> dg.ExecuteInProcessResult:
    """One partition run of the code location's own ingest job, configured only by the environment."""
    return defs.resolve_job_def("mws_ingest").execute_in_process(partition_key=day.isoformat(), raise_on_error=False)


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under the data dir with its size and modification time, to prove nothing was written."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*") if path.is_file()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = next(event for event in result.all_events if event.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def embedded_flag(result: dg.ExecuteInProcessResult) -> bool:
    return next(m.metadata["embedded_simulator"].value for m in result.asset_materializations_for_node("mws_orders"))


def assert_refused_once(result: dg.ExecuteInProcessResult, *phrases: str) -> None:
    """The run failed on its first attempt, not retried, with one line carrying `phrases`."""
    assert not result.success
    message = failure_message(result)
    assert "\n" not in message and all(phrase in message for phrase in phrases), message
    assert not [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def test_a_fresh_dir_without_an_endpoint_is_filled_as_the_demo_and_recorded(data_root, monkeypatch):
    set_environment(monkeypatch, {})
    for day in (DAY, NEXT_DAY):
        result = ingest(day)
        assert result.success and embedded_flag(result) is True
    marker = json.loads((data_root / MARKER_FILE).read_text())
    assert {key: marker[key] for key in ("kind", "endpoint_host")} == {"kind": "embedded-simulator", "endpoint_host": None}


def test_a_run_without_an_endpoint_is_refused_on_a_dir_of_real_data_and_writes_nothing(data_root, monkeypatch, simulator):
    set_environment(monkeypatch, endpoint_environment(simulator))
    filled = ingest(DAY)
    assert filled.success and embedded_flag(filled) is False
    marker = json.loads((data_root / MARKER_FILE).read_text())
    assert marker["kind"] == "api" and marker["endpoint_host"] == simulator.url.removeprefix("http://")
    assert not {DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id} & set(marker.values())
    before = files(data_root)

    set_environment(monkeypatch, {})  # a worker without the secret
    refused = ingest(NEXT_DAY)

    assert_refused_once(refused, "MWS_ENDPOINT is not set", "holds real data", "set MWS_ENDPOINT", "another ORDERS_DATA_DIR")
    assert files(data_root) == before
    assert not partition_dir(data_root, "orders", NEXT_DAY).exists()


def test_a_real_endpoint_is_refused_on_a_demo_dir_before_any_api_call(data_root, monkeypatch, simulator):
    set_environment(monkeypatch, {})
    assert ingest(DAY).success
    before = files(data_root)

    set_environment(monkeypatch, endpoint_environment(simulator))
    refused = ingest(NEXT_DAY)

    assert_refused_once(refused, "holds demo data from the embedded simulator", "another ORDERS_DATA_DIR", f"delete {data_root}")
    assert simulator.stats.requests_by_action == {}
    assert files(data_root) == before


def test_a_dir_from_before_the_marker_is_judged_by_its_partition_manifests(landed, tmp_path, monkeypatch, simulator):
    real = tmp_path / "real"
    for table in ("orders", "order_items"):
        shutil.copytree(landed.root / table, real / table)  # landed from an endpoint; no marker yet
    monkeypatch.setenv("ORDERS_DATA_DIR", str(real))
    set_environment(monkeypatch, {})
    assert_refused_once(ingest(NEXT_DAY), "holds real data from an API endpoint")

    demo = tmp_path / "demo"
    for table in ("orders", "order_items"):
        for day in landed.days[:2]:
            shutil.copytree(partition_dir(landed.root, table, day), partition_dir(demo, table, day))
            manifest = partition_dir(demo, table, day) / MANIFEST_FILE
            manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "embedded_simulator": True}))
    monkeypatch.setenv("ORDERS_DATA_DIR", str(demo))
    set_environment(monkeypatch, endpoint_environment(simulator))
    assert_refused_once(ingest(NEXT_DAY), "holds demo data")

    (partition_dir(demo, "orders", landed.days[0]) / MANIFEST_FILE).unlink()  # a partition of unknown origin counts as real
    set_environment(monkeypatch, {})
    assert_refused_once(ingest(NEXT_DAY), "holds real data")


def test_demo_and_backfill_refuse_up_front_with_one_line(data_root, monkeypatch, simulator, tmp_path, capsys):
    set_environment(monkeypatch, endpoint_environment(simulator))
    assert ingest(DAY).success
    before = files(data_root)
    set_environment(monkeypatch, {})
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    for argv in (["demo", "--days", "1"], ["backfill", "2024-03-04", "2024-03-05"]):
        assert main(argv) == EXIT_FAILED
        errors = capsys.readouterr().err.splitlines()
        assert len(errors) == 1 and errors[0].startswith("error: MWS_ENDPOINT is not set") and "another ORDERS_DATA_DIR" in errors[0]
    assert files(data_root) == before


RUN_AFTER_LOAD = """
import json, os, sys
load_env, run_env = json.loads(sys.argv[1]), json.loads(sys.argv[2])
os.environ.update(load_env)
from orders_pipeline.definitions import defs
for name in load_env:
    del os.environ[name]
os.environ.update(run_env)
result = defs.resolve_job_def("mws_ingest").execute_in_process(partition_key=sys.argv[3], raise_on_error=False)
materializations = result.asset_materializations_for_node("mws_orders") if result.success else []
print(json.dumps({"success": result.success, "embedded": [m.metadata["embedded_simulator"].value for m in materializations]}))
"""


@pytest.mark.parametrize("loaded_with_endpoint", [True, False], ids=["set-when-loaded-unset-at-run", "unset-when-loaded-set-at-run"])
def test_the_code_location_reads_mws_settings_from_the_environment_of_the_run(tmp_path, simulator, loaded_with_endpoint):
    """A code location loaded under one environment and run under another follows the run's environment."""
    settings = endpoint_environment(simulator)
    load_env, run_env = (settings, {}) if loaded_with_endpoint else ({}, settings)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MWS_", "DAGSTER_HOME"))}
    env["ORDERS_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-c", RUN_AFTER_LOAD, json.dumps(load_env), json.dumps(run_env), DAY.isoformat()]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome == {"success": True, "embedded": [not run_env, not run_env]}, completed.stderr[-3000:]
    assert (simulator.stats.requests_by_action.get("ListOrders", 0) > 0) == bool(run_env)
