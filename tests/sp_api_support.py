"""Helpers for the SP-API client tests: the client pointed at a simulator, and rows keyed for comparison."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.quotas import MwsThrottle
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, DEMO_SP_API_CREDENTIALS, MwsSimulator
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.lwa import LwaCredentials, LwaTokenClient
from orders_pipeline.sources.sp_api.throttle import new_throttle

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
DAY = datetime(2024, 3, 3, tzinfo=timezone.utc)
NEXT_DAY = DAY + timedelta(days=1)
FAST = 600.0


def lwa_for(simulator: MwsSimulator, **overrides: str) -> LwaTokenClient:
    """An LWA token client for the simulator's token endpoint with the demo app (fields overridable)."""
    demo = DEMO_SP_API_CREDENTIALS
    fields = {"app_id": demo.app_id, "client_secret": demo.client_secret, "refresh_token": demo.refresh_token, **overrides}
    return LwaTokenClient(LwaCredentials(**fields), f"{simulator.url}/auth/o2/token")


def sp_client_for(simulator: MwsSimulator, *, time_scale: float = FAST, **options) -> SpApiOrdersClient:
    """An SP-API orders client for the simulator, paced for its time scale, on the simulator's fixed clock."""
    tokens = options.pop("tokens", None) or lwa_for(simulator)
    return SpApiOrdersClient(
        simulator.url, tokens, DEMO_MARKETPLACE_IDS, throttle=new_throttle(time_scale=time_scale), now=lambda: NOW,
        **options,
    )


def mws_client_for(simulator: MwsSimulator, **options) -> MwsOrdersClient:
    """The MWS client for the same simulator and clock."""
    credentials = MwsCredentials(DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id)
    return MwsOrdersClient(
        simulator.url, credentials, DEMO_MARKETPLACE_IDS, throttle=MwsThrottle(time_scale=FAST), now=lambda: NOW, **options
    )


def search_day(client: SpApiOrdersClient) -> tuple[list[dict], list[dict], list]:
    """Every order and item row of the test day through searchOrders, and the pages."""
    pages = list(client.search_orders(DAY, NEXT_DAY))
    orders = pa.Table.from_batches([page.orders for page in pages]).to_pylist() if pages else []
    items = pa.Table.from_batches([page.items for page in pages]).to_pylist() if pages else []
    return orders, items, pages


def mws_day(client: MwsOrdersClient) -> tuple[list[dict], list[dict]]:
    """Every order and item row of the test day through the MWS face."""
    orders = [row for page in client.list_orders(DAY, NEXT_DAY) for row in page.table.to_pylist()]
    items = []
    for order in orders:
        for page in client.list_order_items(order["amazon_order_id"]):
            for row in page.table.to_pylist():
                items.append({**row, "order_last_update_date": order["last_update_date"]})
    return orders, items


def by_version(rows: list[dict]) -> dict[tuple, dict]:
    """Order rows keyed by (order id, last update)."""
    return {(row["amazon_order_id"], row["last_update_date"]): row for row in rows}


def pick(row: dict, columns: list[str]) -> dict:
    return {column: row[column] for column in columns}
