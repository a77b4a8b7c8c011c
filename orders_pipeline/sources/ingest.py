"""One UTC day of order changes, from any source behind the seam merged into the day's two raw partitions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from orders_pipeline.sources.raw_schema import ITEM_VERSION_KEY, ORDER_ITEMS_SCHEMA, ORDER_VERSION_KEY, ORDERS_SCHEMA
from orders_pipeline.sources.seam import OrdersSource, Progress
from orders_pipeline.storage.layout import partition_dir
from orders_pipeline.storage.partitions import MergeCounts, PartitionWriter

SAFETY_LAG = timedelta(minutes=2)


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
    source: str = ""
    method: str = ""
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
    source: OrdersSource,
    day: date,
    root: Path,
    *,
    now: datetime | None = None,
    replace: bool = False,
    progress: Progress = lambda message: None,
) -> DayReport:
    """Fetch every order version changed on `day` with its items, and merge them into the day's two partitions.

    Versions fetched now are written, versions stored before and not returned now are kept (APIs only return
    each order's current version); `replace=True` rebuilds the day from this fetch alone.
    """
    started = time.monotonic()
    window = day_window(day, now or source.now())  # the source's clock: the window and its clamp agree
    report = DayReport(day, window.start, window.requested_before, source.name, source.method, replaced=replace)
    orders = PartitionWriter(partition_dir(root, "orders", day), ORDERS_SCHEMA, ORDER_VERSION_KEY, replace=replace)
    items = PartitionWriter(partition_dir(root, "order_items", day), ORDER_ITEMS_SCHEMA, ITEM_VERSION_KEY, replace=replace)
    with orders, items:
        for batch in source.fetch(window.start, window.requested_before, progress):
            if batch.orders is not None:
                orders.write(batch.orders)
            if batch.order_items is not None:
                items.write(batch.order_items)
        orders.prepare()
        items.prepare()
        # items first: staging takes the items of the order version it can see, so between the two renames a
        # reader sees new items of versions not yet visible, never a visible version without its items
        items.publish()
        orders.publish()
    coverage = source.coverage()
    report.covered_until = coverage.covered_until
    report.orders, report.order_items = orders.merge, items.merge
    report.order_pages = coverage.pages.get("orders", 0)
    report.item_pages = coverage.pages.get("order_items", 0)
    report.quarantined_values = coverage.quarantined_values
    report.api = coverage.api
    report.seconds = round(time.monotonic() - started, 3)
    return report
