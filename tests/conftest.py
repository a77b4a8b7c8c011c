"""Shared fixtures: a simulator over real HTTP and a resource pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from orders_pipeline.resources import MwsResource
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator, SimulatorConfig
from orders_pipeline.storage import partition_dir

FAST = 600.0  # quota clock speed-up for tests


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A fresh ORDERS_DATA_DIR for the test."""
    root = tmp_path / "data"
    monkeypatch.setenv("ORDERS_DATA_DIR", str(root))
    return root


@pytest.fixture
def simulator() -> Iterator[MwsSimulator]:
    """The default simulator on a free loopback port, with a fast quota clock."""
    with MwsSimulator(SimulatorConfig(time_scale=FAST)) as running:
        yield running


def resource_for(simulator: MwsSimulator, **overrides: str) -> MwsResource:
    """An MWS resource configured for `simulator` with the demo seller's credentials."""
    settings = {
        "endpoint": simulator.url,
        "access_key_id": DEMO_CREDENTIALS.access_key_id,
        "secret_key": DEMO_CREDENTIALS.secret_key,
        "seller_id": DEMO_CREDENTIALS.seller_id,
        "marketplace_ids": ",".join(DEMO_MARKETPLACE_IDS),
        **overrides,
    }
    return MwsResource(**settings)


def day_bounds(day) -> tuple[datetime, datetime]:
    """[midnight, next midnight) in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def read_partition(root, table: str, day) -> list[dict]:
    """All rows of one committed partition."""
    return pq.read_table(partition_dir(root, table, day)).to_pylist()
