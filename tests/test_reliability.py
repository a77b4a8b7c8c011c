"""Faults survived with every order and item present exactly once (issue 4), through Dagster, real HTTP and Parquet."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from orders_pipeline.defs.assets.raw import MWS_POOL
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, Faults, MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import partition_dir

from .conftest import FAST, assert_matches_simulator, day_bounds, read_partition, resource_for
from .reliability_support import (
    CLOCKS,
    REPO,
    MovableClock,
    TunedMws,
    clean_env,
    materialize,
    materialization_metadata,
)

DAY = date(2024, 3, 3)


def recording(simulator: MwsSimulator) -> list[tuple[float, str, dict]]:
    """Record (monotonic time, Action, params) of every request the simulator receives."""
    calls: list[tuple[float, str, dict]] = []
    service = simulator._service
    handle = service.handle

    def recorded(method, host, path, params):
        calls.append((time.monotonic(), params.get("Action", ""), dict(params)))
        return handle(method, host, path, params)

    service.handle = recorded
    return calls


def tuned(simulator: MwsSimulator, **settings) -> TunedMws:
    base = resource_for(simulator)
    return TunedMws(**{**base.__dict__, **settings})


# -- transient failures --------------------------------------------------------------------------


def test_500_503_resets_and_read_timeouts_at_any_request_lose_and_repeat_nothing(data_root):
    """Each kind of transient failure hits ListOrders, ListOrdersByNextToken, ListOrderItems(ByNextToken);
    each failed call is re-sent once with the same parameters (same NextToken), nothing restarts."""
    config = dict(time_scale=FAST, orders_per_day=120, list_orders_page_size_cap=25)
    with MwsSimulator(SimulatorConfig(**config)) as dry:  # the request sequence of a fault-free run
        assert materialize(resource_for(dry), DAY).success
        actions = [action for _, action in dry.stats.request_times]
    first = {name: [i + 1 for i, a in enumerate(actions) if a == name] for name in set(actions)}
    plan = {  # original request number -> fault
        first["ListOrders"][0]: "503",
        first["ListOrdersByNextToken"][0]: "reset",
        first["ListOrdersByNextToken"][1]: "500",
        first["ListOrdersByNextToken"][2]: "timeout",
        first["ListOrderItems"][5]: "reset",
        first["ListOrderItems"][6]: "timeout",
        first["ListOrderItemsByNextToken"][0]: "500",
        first["ListOrderItemsByNextToken"][1]: "503",
    }
    numbers: dict[str, set[int]] = {"503": set(), "500": set(), "reset": set(), "timeout": set()}
    for shift, original in enumerate(sorted(plan)):  # each earlier fault adds one retry before this call
        numbers[plan[original]].add(original + shift)
    faults = Faults(
        fail_request_numbers=frozenset(numbers["503"]),
        internal_error_request_numbers=frozenset(numbers["500"]),
        reset_request_numbers=frozenset(numbers["reset"]),
        slow_request_numbers=frozenset(numbers["timeout"]),
        slow_seconds=1.0,
    )
    with MwsSimulator(SimulatorConfig(**config, faults=faults)) as sim:
        calls = recording(sim)
        result = materialize(tuned(sim, timeout=0.4, backoff_base=0.01), DAY)
        assert result.success
        assert_matches_simulator(data_root, sim, DAY)
    assert sim.stats.faults_injected == len(plan)
    faulted = sorted(n for group in numbers.values() for n in group)
    for number in faulted:  # the retry is the very next request: same Action, same parameters but signature/time
        failed, retried = calls[number - 1], calls[number]
        strip = lambda p: {k: v for k, v in p.items() if k not in ("Signature", "Timestamp")}  # noqa: E731
        assert failed[1] == retried[1] and strip(failed[2]) == strip(retried[2]), number
    assert {calls[n - 1][1] for n in faulted} == {"ListOrders", "ListOrdersByNextToken", "ListOrderItems", "ListOrderItemsByNextToken"}
    assert sim.stats.requests_by_action["ListOrders"] == 2  # the 503 and its retry: the listing never restarted
    api = materialization_metadata(result)["orders"]
    assert api["api_retries"] == len(plan)
    assert api["api_connection_errors"] == 4 and api["api_server_errors"] == 4
    assert api["api_calls_total"] == len(actions) + len(plan)


def test_external_throttling_is_waited_out_and_nothing_is_lost(data_root):
    """Another process drains the seller's quota now and then: RequestThrottled is waited out, not fatal."""
    faults = Faults(external_throttle=True)
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=150, seed=11, faults=faults)) as sim:
        result = materialize(resource_for(sim), DAY)
        assert result.success
        assert_matches_simulator(data_root, sim, DAY)
    assert sim.stats.throttled > 0
    assert materialization_metadata(result)["orders"]["api_throttled_responses"] == sim.stats.throttled


def test_planned_pacing_is_never_throttled_past_the_burst(data_root):
    """More ListOrderItems calls than the burst of 30: the client waits for tokens instead of being refused."""
    with MwsSimulator(SimulatorConfig(time_scale=60, orders_per_day=45)) as sim:
        result = materialize(resource_for(sim), DAY)
        assert result.success
        assert_matches_simulator(data_root, sim, DAY)
    assert sim.stats.requests_by_action["ListOrderItems"] + sim.stats.requests_by_action.get("ListOrderItemsByNextToken", 0) > 30
    assert sim.stats.throttled == 0
    assert materialization_metadata(result)["orders"]["api_throttle_wait_seconds"] > 0


def test_a_window_shortened_several_times_is_continued_to_the_end_of_day(data_root):
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=100, faults=Faults(truncate_window_hours=5))) as sim:
        calls = recording(sim)
        result = materialize(resource_for(sim), DAY)
        assert result.success
        assert_matches_simulator(data_root, sim, DAY)
    starts = [params["LastUpdatedAfter"] for _, action, params in calls if action == "ListOrders"]
    assert starts == [f"2024-03-03T{h:02d}:00:00Z" for h in (0, 5, 10, 15, 20)]
    metadata = materialization_metadata(result)["orders"]
    assert metadata["complete"] is True and metadata["covered_until"] == "2024-03-04T00:00:00+00:00"


def test_an_order_served_twice_across_pages_keeps_both_versions_each_with_its_items(data_root):
    """The older version comes a page earlier. Both are real versions of the change feed: each is stored once, with
    the items fetched for it (their order_last_update_date names it), and the newer one is the order's latest."""
    config = SimulatorConfig(time_scale=FAST, orders_per_day=150, list_orders_page_size_cap=20, faults=Faults(duplicate_across_pages=True))
    with MwsSimulator(config) as sim:
        result = materialize(resource_for(sim), DAY)
        assert result.success
        assert_matches_simulator(data_root, sim, DAY)
    metadata = materialization_metadata(result)["orders"]
    stored = read_partition(data_root, "orders", DAY)
    assert metadata["dagster/row_count"] == len(stored) > len({row["amazon_order_id"] for row in stored})


# -- crash in the middle of writing --------------------------------------------------------------

_KILLED_INGEST = """
import sys
from datetime import date
from pathlib import Path
import orders_pipeline.sources.mws.source as mws_source
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.simulator import DEMO_CREDENTIALS as C, DEMO_MARKETPLACE_IDS
mws_source.FLUSH_ROWS = 1  # open the temp file after the first order, so it exists for the whole slow run
client = MwsOrdersClient(sys.argv[1], MwsCredentials(C.access_key_id, C.secret_key, C.seller_id), DEMO_MARKETPLACE_IDS)
ingest_day(mws_source.MwsOrdersSource(client), date.fromisoformat(sys.argv[3]), Path(sys.argv[2]))
"""


def test_sigkill_while_writing_leaves_the_old_partition_and_the_next_run_completes_it(data_root, tmp_path):
    # the old partition: the same seller's day fetched at noon, so it holds versions the next run no longer sees
    clock = MovableClock(datetime(2024, 3, 3, 12, 0, tzinfo=timezone.utc))
    CLOCKS["noon"] = clock
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=60, clock=clock)) as old:
        assert materialize(tuned(old, clock="noon"), DAY).success
    old_bytes = {t: (partition_dir(data_root, t, DAY) / "part-0.parquet").read_bytes() for t in ("orders", "order_items")}
    old_rows = {t: read_partition(data_root, t, DAY) for t in ("orders", "order_items")}

    slow = Faults(slow_request_numbers=frozenset(range(3, 10_000)), slow_seconds=0.05)
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=60, faults=slow)) as sim:
        script = tmp_path / "ingest_once.py"
        script.write_text(_KILLED_INGEST)
        child = subprocess.Popen([sys.executable, str(script), sim.url, str(data_root), DAY.isoformat()], cwd=REPO)
        orders_dir = partition_dir(data_root, "orders", DAY)
        deadline = time.monotonic() + 30
        try:
            while not list(orders_dir.glob(".tmp-*")):
                assert child.poll() is None, "the run ended before it started writing"
                assert time.monotonic() < deadline, "no temp file appeared"
                time.sleep(0.02)
            time.sleep(0.3)  # a few more orders written into the temp file
            assert child.poll() is None
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(10)
        assert child.returncode == -signal.SIGKILL
        temp_files = list(orders_dir.glob(".tmp-*"))
        assert temp_files and temp_files[0].stat().st_size > 0  # killed mid-write: a partial temp file exists

        for table in ("orders", "order_items"):  # readers see exactly the old partition
            directory = partition_dir(data_root, table, DAY)
            assert [p.name for p in directory.glob("*.parquet")] == ["part-0.parquet"]
            assert (directory / "part-0.parquet").read_bytes() == old_bytes[table]
            assert read_partition(data_root, table, DAY) == old_rows[table]
            count = duckdb.sql(f"select count(*) from read_parquet('{data_root}/{table}/*/*.parquet')").fetchall()[0][0]
            assert count == len(old_rows[table])

        sim.config.faults.slow_request_numbers = frozenset()  # the next run, at full speed
        assert materialize(resource_for(sim), DAY).success
        assert_matches_simulator(data_root, sim, DAY, merged=True)
    for table in ("orders", "order_items"):
        assert [p.name for p in partition_dir(data_root, table, DAY).glob("*.parquet")] == ["part-0.parquet"]
        stored = read_partition(data_root, table, DAY)
        assert all(row in stored for row in old_rows[table])  # the noon versions survived the merge


# -- today ---------------------------------------------------------------------------------------


def test_today_is_written_as_partial_and_completed_by_a_later_run(data_root):
    """Server and client share one clock: at 15:00 the day is partial up to 14:58; after midnight it completes."""
    clock = MovableClock(datetime(2024, 3, 3, 15, 0, tzinfo=timezone.utc))
    CLOCKS["today"] = clock
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=80, clock=clock)) as sim:
        resource = tuned(sim, clock="today")
        first = materialize(resource, DAY)
        assert first.success
        metadata = materialization_metadata(first)
        for table in ("orders", "order_items"):
            assert metadata[table]["complete"] is False
            assert metadata[table]["covered_until"] == "2024-03-03T14:58:00+00:00"
        assert_matches_simulator(data_root, sim, DAY, until=datetime(2024, 3, 3, 14, 58, tzinfo=timezone.utc))
        partial = len(read_partition(data_root, "orders", DAY))

        clock.moment = datetime(2024, 3, 4, 0, 30, tzinfo=timezone.utc)
        second = materialize(resource, DAY)
        assert second.success
        metadata = materialization_metadata(second)
        for table in ("orders", "order_items"):
            assert metadata[table]["complete"] is True
            assert metadata[table]["covered_until"] == "2024-03-04T00:00:00+00:00"
        assert_matches_simulator(data_root, sim, DAY)
        assert len(read_partition(data_root, "orders", DAY)) > partial


def test_a_window_ending_now_is_never_complete_on_the_clients_clock_alone(data_root):
    """Day D+1 asked at D+1 00:01: the 2-minute rule leaves nothing to ask, so nothing is vouched for."""
    clock = MovableClock(datetime(2024, 3, 4, 0, 1, tzinfo=timezone.utc))
    CLOCKS["just-after-midnight"] = clock
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=20, clock=clock)) as sim:
        result = materialize(tuned(sim, clock="just-after-midnight"), date(2024, 3, 4))
        assert result.success
    metadata = materialization_metadata(result)["orders"]
    assert metadata["complete"] is False and metadata["dagster/row_count"] == 0
    assert sim.stats.total_requests == 0


# -- two partitions at once share one budget -----------------------------------------------------


def _materialize_cli(day: date, env: dict, log: Path) -> subprocess.Popen:
    """The contract command in its own process; output to a file (a full pipe would block the slot holder)."""
    command = [
        str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "orders_pipeline.definitions",
        "--select", "orders,order_items", "--partition", day.isoformat(),
    ]
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _step_intervals(dagster_home: Path) -> list[tuple[float, float]]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        intervals = []
        for run in instance.get_runs():
            stamps = {
                record.dagster_event_type: record.timestamp
                for record in instance.all_logs(run.run_id)
                if record.dagster_event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)
            }
            intervals.append((stamps[dg.DagsterEventType.STEP_START], stamps[dg.DagsterEventType.STEP_SUCCESS]))
    return sorted(intervals)


def test_two_partitions_run_at_once_take_turns_in_the_mws_api_pool(tmp_path, monkeypatch):
    """Two `dagster asset materialize` processes, one instance (the repo's dagster.yaml: pool limit 1),
    one simulator: the second run's step waits for the first's slot, so their API calls never interleave."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    import dagster as dg

    # create the storage and the pool's slot once, as a first command would: Dagster creates both lazily, and two
    # first runs on a brand-new instance can race (two SQLite schemas, or two slots counted-then-inserted at once)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.initialize_concurrency_limit_to_default(MWS_POOL)
    days = (date(2024, 3, 3), date(2024, 3, 4))
    with MwsSimulator(SimulatorConfig(time_scale=20, orders_per_day=40)) as sim:
        calls = recording(sim)
        env = clean_env(
            DAGSTER_HOME=str(home), ORDERS_DATA_DIR=str(tmp_path / "data"), MWS_ENDPOINT=sim.url,
            MWS_ACCESS_KEY_ID=DEMO_CREDENTIALS.access_key_id, MWS_SECRET_KEY=DEMO_CREDENTIALS.secret_key,
            MWS_SELLER_ID=DEMO_CREDENTIALS.seller_id, MWS_MARKETPLACE_IDS=",".join(DEMO_MARKETPLACE_IDS),
        )
        logs = [tmp_path / f"run-{day}.log" for day in days]
        runs = [_materialize_cli(day, env, log) for day, log in zip(days, logs)]
        try:
            for run in runs:
                run.wait(timeout=180)  # two Dagster CLI start-ups on a loaded 2-core machine
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
                    run.wait()
        outputs = [log.read_text() for log in logs]
        for run, output in zip(runs, outputs):
            assert run.returncode == 0, output[-3000:]
        for day in days:
            assert_matches_simulator(tmp_path / "data", sim, day)
        owner = {o["amazon_order_id"]: day for day in days for o in sim.expected_orders(*day_bounds(day))}
    times = {day: [t for t, action, params in calls if action == "ListOrderItems" and owner.get(params["AmazonOrderId"]) == day] for day in days}
    times = {day: (min(ts), max(ts)) for day, ts in times.items()}
    (first_start, first_end), (second_start, second_end) = sorted(times.values())
    assert first_end < second_start, "the two runs called the API at the same time"
    (step1_start, step1_end), (step2_start, step2_end) = _step_intervals(home)
    assert step1_end <= step2_start, "both steps held the mws_api slot at once"
    assert any("mws_api" in output for output in outputs)  # Dagster says the second step waited for the pool
