"""One account's runs one at a time, other accounts alongside: the repo's dagster.yaml, Dagster's run queue and a real
`dagster-daemon run` launching the runs a `dagster job backfill` queued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ACCOUNTS = "accounts:\n  - name: alpha\n    source: mws\n  - name: beta\n    source: sp-api\n"
PARTITIONS = ["alpha|2024-03-03", "alpha|2024-03-04", "beta|2024-03-03"]
WAIT_SECONDS = 180


def instance_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding the repo's dagster.yaml, its queue checked every second instead of every 5."""
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["run_coordinator"] = {
        "module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": {"dequeue_interval_seconds": 1},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def environment(tmp_path: Path, home: Path) -> dict[str, str]:
    """Two simulated accounts (embedded simulators, one per run), a fresh data dir and the instance."""
    (tmp_path / "accounts.yaml").write_text(ACCOUNTS)
    (tmp_path / "workspace.yaml").write_text(
        yaml.safe_dump({"load_from": [{"python_module": {"module_name": "orders_pipeline.definitions", "working_directory": str(REPO)}}]})
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MWS_", "SP_API_", "LWA_", "ORDERS_", "DAGSTER_"))}
    return {**env, "DAGSTER_HOME": str(home), "ORDERS_ACCOUNTS_FILE": str(tmp_path / "accounts.yaml"),
            "ORDERS_DATA_DIR": str(tmp_path / "data")}


def run_intervals(home: Path) -> dict[str, tuple[float, float, dg.DagsterRunStatus]]:
    """Start, end and status of each raw run, by its partition."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name="mws_ingest"))
        return {r.dagster_run.tags["dagster/partition"]: (r.start_time, r.end_time, r.dagster_run.status) for r in records}


def run_daemon_until_finished(tmp_path: Path, env: dict[str, str], home: Path) -> None:
    """Run `dagster-daemon run` until every queued run has finished (at most WAIT_SECONDS), then stop it by its pid."""
    with open(tmp_path / "daemon.log", "w") as log:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=tmp_path, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            runs = run_intervals(home)
            if len(runs) == len(PARTITIONS) and all(end is not None for _, end, _ in runs.values()):
                return
            time.sleep(1)
        raise AssertionError(f"runs not finished in {WAIT_SECONDS} s: {runs}; {(tmp_path / 'daemon.log').read_text()[-3000:]}")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)


def overlap(first: tuple, second: tuple) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def test_one_accounts_runs_take_turns_while_another_account_runs_alongside(tmp_path):
    home = instance_home(tmp_path)
    env = environment(tmp_path, home)
    queued = subprocess.run(
        [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-j", "mws_ingest",
         "--partitions", ",".join(PARTITIONS), "--noprompt"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert queued.returncode == 0, queued.stderr[-3000:]
    assert {status for _, _, status in run_intervals(home).values()} == {dg.DagsterRunStatus.QUEUED}

    run_daemon_until_finished(tmp_path, env, home)

    runs = run_intervals(home)
    assert {status for _, _, status in runs.values()} == {dg.DagsterRunStatus.SUCCESS}, (tmp_path / "daemon.log").read_text()[-3000:]
    alpha_first, alpha_second, beta = (runs[key] for key in PARTITIONS)
    assert not overlap(alpha_first, alpha_second), "two runs of account alpha ran at the same time"
    assert overlap(beta, alpha_first) or overlap(beta, alpha_second), "account beta waited for account alpha"
    for account in ("alpha", "beta"):
        assert (tmp_path / "data" / "orders" / f"account={account}" / "dt=2024-03-03" / "part-0.parquet").exists()
