"""A session-wide data dir produced by real materializations: 21 nightly runs against the simulator, then the marts and charts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from orders_pipeline.definitions import defs
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig

from .conftest import FAST, resource_for

FIRST_DAY = date(2024, 3, 1)
DAYS = [FIRST_DAY + timedelta(days=offset) for offset in range(21)]


@dataclass(frozen=True)
class Landed:
    """Where the data landed and the Dagster instance that recorded it."""

    root: Path
    instance: dg.DagsterInstance
    days: list[date]


@pytest.fixture(scope="session")
def landed(tmp_path_factory) -> Iterator[Landed]:
    """Ingest DAYS one run per partition, each just after its midnight as the schedule would (so orders that change
    later land again as new versions), then build group `analytics`; shared, so read-only."""
    root = tmp_path_factory.mktemp("landed") / "data"
    server_now = [datetime.now(timezone.utc)]
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("ORDERS_DATA_DIR", str(root))
        with MwsSimulator(SimulatorConfig(time_scale=FAST, clock=lambda: server_now[0])) as simulator:
            ingest = defs.resolve_job_def("mws_ingest")
            for day in DAYS:
                server_now[0] = datetime.combine(day + timedelta(days=1), time(0, 15), timezone.utc)
                run = ingest.execute_in_process(
                    partition_key=day.isoformat(), instance=instance, resources={"mws": resource_for(simulator)}
                )
                assert run.success
        assert defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance).success
        yield Landed(root, instance, DAYS)


@pytest.fixture
def landed_env(landed: Landed, monkeypatch) -> Landed:
    """The landed data as this test's ORDERS_DATA_DIR."""
    monkeypatch.setenv("ORDERS_DATA_DIR", str(landed.root))
    monkeypatch.delenv("MWS_ENDPOINT", raising=False)
    return landed
