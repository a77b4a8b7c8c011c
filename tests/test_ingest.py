"""Version tracking in `ingest_day`: items are fetched once per order version served, and every version is kept with its items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.parse import ORDER_ID_INDEX, ORDER_LAST_UPDATE_INDEX, OrdersPage
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, Faults, MwsSimulator, SimulatorConfig

from .conftest import assert_matches_simulator, read_partition

DAY = date(2024, 3, 3)


class EveryPageTwice(MwsOrdersClient):
    """The real client, except that each ListOrders page is handed on twice, as a server repeating itself would."""

    served: list[tuple[str, str]]

    def list_orders(self, updated_after: datetime, updated_before: datetime) -> Iterator[OrdersPage]:
        """Every page, twice in a row; `served` records each (order id, LastUpdateDate text) handed on."""
        self.served = []
        for page in super().list_orders(updated_after, updated_before):
            for _ in range(2):
                self.served += zip(page.records.column(ORDER_ID_INDEX), page.records.column(ORDER_LAST_UPDATE_INDEX))
                yield page


def test_items_are_fetched_once_per_version_served_and_every_version_is_kept_once(tmp_path):
    """Pages repeat (same versions) and older versions come a page before newer ones (different versions)."""
    config = SimulatorConfig(throttling=False, orders_per_day=150, list_orders_page_size_cap=20,
                             faults=Faults(duplicate_across_pages=True))
    credentials = MwsCredentials(DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id)
    with MwsSimulator(config) as sim, EveryPageTwice(sim.url, credentials, DEMO_MARKETPLACE_IDS) as client:
        report = ingest_day(MwsOrdersSource(client), DAY, tmp_path)
        assert_matches_simulator(tmp_path, sim, DAY)
    versions = set(client.served)
    orders = {order_id for order_id, _ in versions}
    assert len(versions) > len(orders)  # some orders were served in two versions
    assert client.stats.calls["ListOrderItems"] == len(versions)
    stored = read_partition(tmp_path, "orders", DAY)
    assert report.orders.fetched == report.orders.total == len(versions) == len(stored)
    assert {row["amazon_order_id"] for row in stored} == orders
    assert report.orders.duplicates_dropped == len(client.served) - len(versions)
