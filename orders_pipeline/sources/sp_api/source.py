"""SP-API behind the source seam: searchOrders pages, each order with its items, as raw batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa

from orders_pipeline.sources.seam import Coverage, Progress, RawBatch
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient

PROGRESS_EVERY_PAGES = 10


class SpApiOrdersSource:
    """Orders v2026-01-01 as an `OrdersSource`: one searchOrders call per 100 order versions, items included."""

    name = "sp-api"
    method = "searchOrders"

    def __init__(self, client: SpApiOrdersClient) -> None:
        self.client = client
        self._coverage = Coverage(covered_until=None)

    def now(self) -> datetime:
        """The client's clock, which the window is clamped to (the API refuses bounds under 2 minutes old)."""
        return self.client.now()

    def fetch(self, start: datetime, end: datetime, progress: Progress) -> Iterator[RawBatch]:
        """Page through searchOrders by lastUpdatedAfter/Before; the client follows the echoed bound."""
        pages = orders = quarantined = 0
        for page in self.client.search_orders(start, end):
            pages += 1
            orders += page.orders.num_rows
            quarantined += page.quarantined_values
            yield RawBatch(orders=_table(page.orders), order_items=_table(page.items))
            if pages % PROGRESS_EVERY_PAGES == 0:
                stats = self.client.stats
                progress(f"{start:%Y-%m-%d}: {orders:,} orders so far in {pages} pages; "
                         f"{stats.throttle_wait_seconds:,.1f} s waiting for quota, {stats.retries} retries")
        self._coverage = Coverage(
            self.client.last_covered_until, quarantined, {"orders": pages, "order_items": pages}, self.client.stats.as_metadata()
        )

    def coverage(self) -> Coverage:
        """What the last fetch covered: the server's echoed bound, quarantined values, pages and API stats."""
        return self._coverage


def _table(batch: pa.RecordBatch) -> pa.Table | None:
    """A record batch as a table (the writers take tables); None when it holds no row."""
    return pa.Table.from_batches([batch]) if batch.num_rows else None
