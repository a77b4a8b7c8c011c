"""Days of order changes, from any source behind the seam, merged into each day's two raw partitions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from orders_pipeline.sources.raw_schema import ITEM_VERSION_KEY, ORDER_ITEMS_SCHEMA, ORDER_VERSION_KEY, ORDERS_SCHEMA
from orders_pipeline.sources.seam import Coverage, OrdersSource, Progress
from orders_pipeline.storage.layout import partition_dir
from orders_pipeline.storage.partitions import MergeCounts, PartitionWriter

SAFETY_LAG = timedelta(minutes=2)


@dataclass(frozen=True)
class DayWindow:
    """The last-update window a run asks for: [start, requested_before), ideally up to `end` (one day or several)."""

    day: date
    start: datetime
    end: datetime
    requested_before: datetime


def day_window(day: date, now: datetime, last_day: date | None = None) -> DayWindow:
    """The window for `day` (to `last_day`): midnight UTC to the next midnight, or to now − 2 min if earlier."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    end = start + timedelta(days=((last_day or day) - day).days + 1)
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
    account: str | None = None,
    progress: Progress = lambda message: None,
) -> DayReport:
    """Fetch every order version changed on `day` with its items, and merge them into the day's two partitions.

    Versions fetched now are written, versions stored before and not returned now are kept (APIs only return
    each order's current version); `replace=True` rebuilds the day from this fetch alone. With `account`, the
    partitions are that account's (`<table>/account=NAME/dt=...`).
    """
    (report,) = ingest_days(source, [day], root, now=now, replace=replace, account=account, progress=progress)
    return report


def ingest_days(
    source: OrdersSource,
    days: Sequence[date],
    root: Path,
    *,
    now: datetime | None = None,
    replace: bool = False,
    account: str | None = None,
    progress: Progress = lambda message: None,
) -> list[DayReport]:
    """Fetch consecutive `days` in one window and merge each row into the partition of its version's UTC day.

    A row whose version time is unknown (quarantined) goes to the first day; one outside the days (a server
    answering past the window) to the nearest day, so nothing is dropped.
    """
    started = time.monotonic()
    window = day_window(days[0], now or source.now(), last_day=days[-1])  # the source's clock: window and clamp agree
    writers = {day: _DayWriters(root, day, replace, account) for day in days}
    with contextlib.ExitStack() as stack:
        for day_writers in writers.values():
            stack.enter_context(day_writers.orders)
            stack.enter_context(day_writers.items)
        for batch in source.fetch(window.start, window.requested_before, progress):
            for day, rows in _by_day(batch.orders, "last_update_date", days):
                writers[day].orders.write(rows)
            for day, rows in _by_day(batch.order_items, "order_last_update_date", days):
                writers[day].items.write(rows)
        for day_writers in writers.values():
            day_writers.orders.prepare()
            day_writers.items.prepare()
        for day_writers in writers.values():
            # items first: staging takes the items of the order version it can see, so between the two renames a
            # reader sees new items of versions not yet visible, never a visible version without its items
            day_writers.items.publish()
            day_writers.orders.publish()
    coverage = source.coverage()
    seconds = round(time.monotonic() - started, 3)
    return [_day_report(day, window, source, coverage, writers[day], replace, seconds) for day in days]


def _day_report(
    day: date, window: DayWindow, source: OrdersSource, coverage: Coverage, writers: _DayWriters, replace: bool,
    seconds: float,
) -> DayReport:
    """One day's share of a run: its part of the window, how its partitions merged, and the run's coverage."""
    asked = day_window(day, window.requested_before + SAFETY_LAG)  # the day, clamped where the run's window ended
    return DayReport(
        day, asked.start, asked.requested_before, source.name, source.method, replaced=replace,
        covered_until=coverage.covered_until, orders=writers.orders.merge, order_items=writers.items.merge,
        order_pages=coverage.pages.get("orders", 0), item_pages=coverage.pages.get("order_items", 0),
        quarantined_values=coverage.quarantined_values, seconds=seconds, api=coverage.api,
    )


class _DayWriters:
    """The two partition writers of one day."""

    def __init__(self, root: Path, day: date, replace: bool, account: str | None) -> None:
        self.orders = PartitionWriter(
            partition_dir(root, "orders", day, account), ORDERS_SCHEMA, ORDER_VERSION_KEY, replace=replace
        )
        self.items = PartitionWriter(
            partition_dir(root, "order_items", day, account), ORDER_ITEMS_SCHEMA, ITEM_VERSION_KEY, replace=replace
        )


def _by_day(rows: pa.Table | None, version_column: str, days: Sequence[date]) -> Iterator[tuple[date, pa.Table]]:
    """The rows split by the UTC day of their version (unknown: the first day; outside: the nearest day)."""
    if rows is None or rows.num_rows == 0:
        return
    if len(days) == 1:
        yield days[0], rows
        return
    first, last = days[0], days[-1]
    row_days = pc.fill_null(rows.column(version_column).cast(pa.date32()), pa.scalar(first, pa.date32()))
    row_days = pc.min_element_wise(pc.max_element_wise(row_days, pa.scalar(first, pa.date32())), pa.scalar(last, pa.date32()))
    for day in pc.unique(row_days).to_pylist():
        yield day, rows.filter(pc.equal(row_days, pa.scalar(day, pa.date32())))
