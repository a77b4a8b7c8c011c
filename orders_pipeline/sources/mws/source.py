"""MWS behind the source seam: ListOrders pages, and each order version's ListOrderItems, as raw batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.parse import (
    ITEM_ORDER_LAST_UPDATE_INDEX,
    ORDER_ID_INDEX,
    ORDER_LAST_UPDATE_INDEX,
    TableBuilder,
    order_items_builder,
    orders_builder,
)
from orders_pipeline.sources.seam import Coverage, Progress, RawBatch
from orders_pipeline.storage.keyset import KeySet

FLUSH_ROWS = 2_000  # rows held as page texts (~3 KB each as Python rows) before they become Arrow (~0.5 KB)
PROGRESS_EVERY_ORDERS = 500
_VERSION_SEPARATOR = "\x1f"  # a control character XML text cannot carry, so (id, version) pairs stay distinct


class MwsOrdersSource:
    """The MWS Orders API (2013-09-01) as an `OrdersSource`: about one ListOrderItems call per order version."""

    name = "mws"
    method = "ListOrders + ListOrderItems"

    def __init__(self, client: MwsOrdersClient) -> None:
        self.client = client
        self._coverage = Coverage(covered_until=None)

    def now(self) -> datetime:
        """The client's clock: the window and its clamp agree with what the client signs."""
        return self.client.now()

    def fetch(self, start: datetime, end: datetime, progress: Progress) -> Iterator[RawBatch]:
        """Page through ListOrders and fetch the items of each order version served, once per version."""
        order_rows, item_rows = orders_builder(), order_items_builder()
        pages = {"orders": 0, "order_items": 0}
        items_so_far = 0
        # (order id, LastUpdateDate text) of every version whose items were fetched: an order served again in
        # another version gets its items again, tagged with that version, so each version keeps its own items
        with KeySet() as fetched_versions:
            for page in self.client.list_orders(start, end):
                pages["orders"] += 1
                order_rows.extend(page.records)
                versions = zip(page.records.column(ORDER_ID_INDEX), page.records.column(ORDER_LAST_UPDATE_INDEX))
                for order_id, version in versions:
                    if not fetched_versions.add(f"{order_id}{_VERSION_SEPARATOR}{version}"):
                        continue
                    pages["order_items"] += self._fetch_items(order_id, version, item_rows)
                    if len(order_rows) >= FLUSH_ROWS or len(item_rows) >= FLUSH_ROWS:
                        items_so_far += len(item_rows)
                        yield _batch(order_rows, item_rows)
                    if len(fetched_versions) % PROGRESS_EVERY_ORDERS == 0:
                        progress(self._progress_line(start, len(fetched_versions), items_so_far + len(item_rows)))
            yield _batch(order_rows, item_rows)
        quarantined = order_rows.quarantined_values + item_rows.quarantined_values
        self._coverage = Coverage(self.client.last_covered_until, quarantined, pages, self.client.stats.as_metadata())

    def coverage(self) -> Coverage:
        """What the last fetch covered: the server's echoed bound, quarantined values, pages and API stats."""
        return self._coverage

    def _fetch_items(self, order_id: str, version: str, item_rows: TableBuilder) -> int:
        """Queue every item of one order, tagged with the order version they belong to; returns the pages read."""
        pages = 0
        for item_page in self.client.list_order_items(order_id):
            pages += 1
            item_page.records.fill(ITEM_ORDER_LAST_UPDATE_INDEX, version)
            item_rows.extend(item_page.records)
        return pages

    def _progress_line(self, start: datetime, orders: int, items: int) -> str:
        stats = self.client.stats
        return (
            f"{start:%Y-%m-%d}: {orders:,} orders and {items:,} items so far; {sum(stats.calls.values()):,} API calls, "
            f"{stats.throttle_wait_seconds:,.1f} s waiting for quota, {stats.retries} retries"
        )


def _batch(order_rows: TableBuilder, item_rows: TableBuilder) -> RawBatch:
    """The queued rows as Arrow tables (the builders are emptied)."""
    return RawBatch(
        orders=order_rows.build() if len(order_rows) else None,
        order_items=item_rows.build() if len(item_rows) else None,
    )
