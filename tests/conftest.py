"""Shared fixtures: a simulator over real HTTP and a resource pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.defs.resources import MwsResource
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator, SimulatorConfig
from orders_pipeline.storage.layout import partition_dir

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


def client_for(simulator: MwsSimulator) -> MwsOrdersClient:
    """A plain MWS client (no Dagster) for `simulator`, with the demo seller's credentials and marketplaces."""
    credentials = MwsCredentials(DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id)
    return MwsOrdersClient(simulator.url, credentials, DEMO_MARKETPLACE_IDS)


def day_bounds(day) -> tuple[datetime, datetime]:
    """[midnight, next midnight) in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def read_partition(root, table: str, day, account: str | None = None) -> list[dict]:
    """All rows of one committed partition (of `account`, with an accounts file)."""
    return pq.read_table(partition_dir(root, table, day, account)).to_pylist()


def latest_versions(rows: list[dict], version: str = "last_update_date") -> dict[str, dict]:
    """The row of each order's latest version (a null version counts as the oldest)."""
    latest: dict[str, dict] = {}
    for row in rows:
        held = latest.get(row["amazon_order_id"])
        if held is None or (row[version] is not None and (held[version] is None or row[version] > held[version])):
            latest[row["amazon_order_id"]] = row
    return latest


def assert_matches_simulator(
    root, simulator: MwsSimulator, day, *, until: datetime | None = None, at_least: int = 10, merged: bool = False,
    account: str | None = None,
) -> None:
    """Each order version is in the partition once, and each order's latest version, with its items, is the simulator's.

    `until` narrows the truth to [midnight, until) for a partial (today's) partition. `merged`: earlier runs stored
    versions of orders that have since changed on a later day, so the partition may hold orders the truth has not.
    """
    start, end = day_bounds(day)
    expected = {order["amazon_order_id"]: order for order in simulator.expected_orders(start, until or end)}
    orders = read_partition(root, "orders", day, account)
    items = read_partition(root, "order_items", day, account)
    assert len(expected) >= at_least
    versions = [(row["amazon_order_id"], row["last_update_date"]) for row in orders]
    assert len(set(versions)) == len(versions), "an order version is stored twice"
    latest = latest_versions(orders)
    if merged:
        latest = {order_id: row for order_id, row in latest.items() if order_id in expected}
    assert sorted(latest) == sorted(expected)
    for order_id, row in latest.items():
        truth = expected[order_id]
        for column in ("order_status", "last_update_date", "purchase_date", "sales_channel", "fulfillment_channel", "marketplace_id", "order_total_amount"):
            assert row[column] == truth[column], (order_id, column)
        assert row["order_total_currency_code"] == (truth["currency"] if truth["order_total_amount"] is not None else None)
    item_versions = [(row["amazon_order_id"], row["order_item_id"], row["order_last_update_date"]) for row in items]
    assert len(set(item_versions)) == len(item_versions), "an item version is stored twice"
    latest_items = [row for row in items if row["amazon_order_id"] in expected
                    and row["order_last_update_date"] == expected[row["amazon_order_id"]]["last_update_date"]]
    expected_items = {(oid, item["order_item_id"]): item for oid, order in expected.items() for item in order["items"]}
    assert sorted((row["amazon_order_id"], row["order_item_id"]) for row in latest_items) == sorted(expected_items)
    for row in latest_items:
        truth = expected_items[(row["amazon_order_id"], row["order_item_id"])]
        for column in ("seller_sku", "asin", "quantity_ordered", "quantity_shipped", "item_price_amount"):
            assert row[column] == truth[column], (row["order_item_id"], column)
    order_versions = set(versions)
    assert all((row["amazon_order_id"], row["order_last_update_date"]) in order_versions for row in items)

from .landed import landed, landed_env  # noqa: E402,F401  (session-wide materialized data for CLI, alert and report tests)
