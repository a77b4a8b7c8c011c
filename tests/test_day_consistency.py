"""A day's two tables stay consistent for the analytics build while the day is re-ingested (issue 14, point 5).

A day publishes `order_items` before `orders`, and a build pins `orders` before `order_items`, so the pinned items
always hold the items of every order version the build can see, however the renames interleave with the pins.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pyarrow.parquet as pq

from orders_pipeline.analytics.incremental import RawSnapshot
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator, SimulatorConfig
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.source import MwsOrdersSource

from .conftest import FAST
from .reliability_support import MovableClock

DAY = date(2024, 3, 3)
RUNS = 14  # hourly re-ingests of the day from 07:00 to 20:00: each sees orders change since the one before


def current_versions_without_items(snapshot: RawSnapshot) -> tuple[int, int]:
    """(order versions the build would take as current, how many of them have no pinned item of that version)."""
    orders = pq.read_table(snapshot.table_dir("orders"), columns=["amazon_order_id", "last_update_date"]).to_pylist()
    items = pq.read_table(snapshot.table_dir("order_items"), columns=["amazon_order_id", "order_last_update_date"])
    with_items = set(zip(items.column(0).to_pylist(), items.column(1).to_pylist()))
    latest: dict[str, datetime] = {}
    for row in orders:
        if row["amazon_order_id"] not in latest or row["last_update_date"] > latest[row["amazon_order_id"]]:
            latest[row["amazon_order_id"]] = row["last_update_date"]
    return len(latest), sum((order_id, version) not in with_items for order_id, version in latest.items())


def test_a_build_never_pins_a_current_order_version_without_its_items(tmp_path):
    clock = MovableClock(datetime(2024, 3, 3, 7, 0, tzinfo=timezone.utc))
    credentials = MwsCredentials(DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id)
    done = threading.Event()
    failures: list[BaseException] = []

    def re_ingest(simulator: MwsSimulator) -> None:
        try:
            with MwsOrdersClient(simulator.url, credentials, DEMO_MARKETPLACE_IDS, now=clock) as client:
                for _ in range(RUNS):
                    ingest_day(MwsOrdersSource(client), DAY, tmp_path)
                    clock.moment += timedelta(hours=1)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failures.append(error)
        finally:
            done.set()

    states, mismatched, pins = set(), 0, 0
    with MwsSimulator(SimulatorConfig(time_scale=FAST, orders_per_day=60, throttling=False, clock=clock)) as simulator:
        writer = threading.Thread(target=re_ingest, args=(simulator,))
        writer.start()
        while not done.is_set() and pins < 5_000:  # bounded: the writer ends after RUNS ingests
            snapshot = RawSnapshot(tmp_path, ["orders", "order_items"])
            try:
                if not all(snapshot.fingerprints.values()):  # the first day is not published yet
                    continue
                versions, missing = current_versions_without_items(snapshot)
            finally:
                snapshot.close()
            pins += 1
            states.add(versions)
            mismatched += missing
        writer.join(60)
    assert not failures, failures
    assert len(states) > 3, "the pins never fell between re-ingests: the test raced nothing"
    assert mismatched == 0
