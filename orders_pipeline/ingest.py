"""One UTC day of order changes, from the MWS client merged into the day's `orders` and `order_items` partitions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from orders_pipeline.keyset import KeySet
from orders_pipeline.mws.client import MwsOrdersClient
from orders_pipeline.mws.parse import (
    ITEM_ORDER_LAST_UPDATE_INDEX,
    ORDER_ID_INDEX,
    ORDER_LAST_UPDATE_INDEX,
    TableBuilder,
    order_items_builder,
    orders_builder,
)
from orders_pipeline.mws.schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.storage import MergeCounts, PartitionWriter, partition_dir

SAFETY_LAG = timedelta(minutes=2)
FLUSH_ROWS = 2_000  # rows held as page texts (~3 KB each as Python rows) before they become Arrow (~0.5 KB)
PROGRESS_EVERY_ORDERS = 500
_VERSION_SEPARATOR = "\x1f"  # a control character XML text cannot carry, so (id, version) pairs stay distinct
ORDER_VERSION_KEY = ("amazon_order_id", "last_update_date")
ITEM_VERSION_KEY = ("amazon_order_id", "order_item_id", "order_last_update_date")


@dataclass(frozen=True)
class DayWindow:
    """The LastUpdateDate window one partition asks for: [start, requested_before), ideally up to `end`."""

    day: date
    start: datetime
    end: datetime
    requested_before: datetime

    @property
    def is_open(self) -> bool:
        """The day has not finished (minus MWS's two-minute lag), so the partition can only be partial."""
        return self.requested_before < self.end


def day_window(day: date, now: datetime) -> DayWindow:
    """The window for `day`: midnight UTC to the next midnight, or to now − 2 min if that is earlier."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    return DayWindow(day, start, end, min(end, now - SAFETY_LAG))


@dataclass
class DayReport:
    """What one partition run fetched, how it merged into the partition, and what it could vouch for."""

    day: date
    window_start: datetime
    window_requested_end: datetime
    replaced: bool = False
    covered_until: datetime | None = None
    orders: MergeCounts = field(default_factory=MergeCounts)
    order_items: MergeCounts = field(default_factory=MergeCounts)
    order_pages: int = 0
    item_pages: int = 0
    quarantined_values: int = 0
    seconds: float = 0.0
    api: dict[str, int | float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True only when the server itself vouched for the window up to the end of the day."""
        end = datetime(self.day.year, self.day.month, self.day.day, tzinfo=timezone.utc) + timedelta(days=1)
        return self.covered_until is not None and self.covered_until >= end


def ingest_day(
    client: MwsOrdersClient,
    day: date,
    root: Path,
    *,
    now: datetime | None = None,
    replace: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> DayReport:
    """Fetch every order version changed on `day` with its items, and merge them into the day's two partitions.

    Versions fetched now are written, versions stored before and not returned now are kept (the API only returns
    each order's current version); `replace=True` rebuilds the day from this fetch alone.
    """
    started = time.monotonic()
    window = day_window(day, now or client.now())  # the client's clock: the window and its clamp agree
    report = DayReport(day, window.start, window.requested_before, replaced=replace)
    orders = PartitionWriter(partition_dir(root, "orders", day), ORDERS_SCHEMA, ORDER_VERSION_KEY, replace=replace)
    items = PartitionWriter(partition_dir(root, "order_items", day), ORDER_ITEMS_SCHEMA, ITEM_VERSION_KEY, replace=replace)
    # (order id, LastUpdateDate text) of every version whose items were fetched: an order served again in
    # another version gets its items again, tagged with that version, so each version keeps its own items
    with orders, items, KeySet() as fetched_versions:
        order_rows, item_rows = orders_builder(), order_items_builder()
        for page in client.list_orders(window.start, window.requested_before):
            report.order_pages += 1
            order_rows.extend(page.records)
            versions = zip(page.records.column(ORDER_ID_INDEX), page.records.column(ORDER_LAST_UPDATE_INDEX))
            for order_id, version in versions:
                if not fetched_versions.add(f"{order_id}{_VERSION_SEPARATOR}{version}"):
                    continue
                report.item_pages += _fetch_items(client, order_id, version, item_rows)
                _flush_if_full(order_rows, orders)
                _flush_if_full(item_rows, items)
                if len(fetched_versions) % PROGRESS_EVERY_ORDERS == 0:
                    progress(_progress_line(day, len(fetched_versions), items.merge.written + len(item_rows), client))
        _flush(order_rows, orders)
        _flush(item_rows, items)
        orders.prepare()
        items.prepare()
        orders.publish()  # two renames back to back: the window where orders and items disagree is tiny
        items.publish()
    report.covered_until = client.last_covered_until
    report.orders = orders.merge
    report.order_items = items.merge
    report.quarantined_values = order_rows.quarantined_values + item_rows.quarantined_values
    report.api = client.stats.as_metadata()
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _fetch_items(client: MwsOrdersClient, order_id: str, version: str, item_rows: TableBuilder) -> int:
    """Queue every item of one order, tagged with the order version they belong to; returns the pages read."""
    pages = 0
    for item_page in client.list_order_items(order_id):
        pages += 1
        item_page.records.fill(ITEM_ORDER_LAST_UPDATE_INDEX, version)
        item_rows.extend(item_page.records)
    return pages


def _flush_if_full(builder: TableBuilder, writer: PartitionWriter) -> None:
    if len(builder) >= FLUSH_ROWS:
        _flush(builder, writer)


def _flush(builder: TableBuilder, writer: PartitionWriter) -> None:
    if len(builder):
        writer.write(builder.build())


def _progress_line(day: date, orders: int, items: int, client: MwsOrdersClient) -> str:
    stats = client.stats
    return (
        f"{day}: {orders:,} orders and {items:,} items so far; {sum(stats.calls.values()):,} API calls, "
        f"{stats.throttle_wait_seconds:,.1f} s waiting for quota, {stats.retries} retries"
    )
