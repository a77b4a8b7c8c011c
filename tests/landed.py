"""A session-wide data dir produced by real materializations: 21 days from the simulator, then the marts and charts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
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
    """Ingest DAYS one run per partition and build group `analytics`, as a user would; shared, so read-only."""
    root = tmp_path_factory.mktemp("landed") / "data"
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("ORDERS_DATA_DIR", str(root))
        with MwsSimulator(SimulatorConfig(time_scale=FAST)) as simulator:
            ingest = defs.resolve_job_def("mws_ingest")
            for day in DAYS:
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
