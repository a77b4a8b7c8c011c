"""SP-API's bulk path behind the source seam: one orders report per 30 days of a range, as raw batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from orders_pipeline.sources.seam import Coverage, Progress, RawBatch
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.reports import REPORT_TYPE, SpApiReportsClient


class SpApiReportsSource:
    """`GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL` reports as an `OrdersSource`: a month in one document.

    The flat file has no order total and no order-item id (items are keyed `<order id>/<sku>`): see README."""

    name = "sp-api"
    method = f"report {REPORT_TYPE}"

    def __init__(self, client: SpApiOrdersClient, reports: SpApiReportsClient) -> None:
        self.client = client
        self.reports = reports
        self._coverage = Coverage(covered_until=None)

    def now(self) -> datetime:
        """The client's clock (reports refuse times under 2 minutes old)."""
        return self.client.now()

    def fetch(self, start: datetime, end: datetime, progress: Progress) -> Iterator[RawBatch]:
        """Create, wait for and read one report per ≤ 30 days of [start, end)."""
        count = quarantined = 0
        covered: datetime | None = None
        for report in self.reports.orders_reports(start, end):
            count += 1
            quarantined += report.tables.quarantined_values
            progress(f"report {report.report_id} ({report.data_start:%Y-%m-%d}..{report.data_end:%Y-%m-%d}): "
                     f"{report.tables.orders.num_rows:,} order versions, {report.tables.items.num_rows:,} items, "
                     f"{report.tables.malformed_rows} malformed rows left out, ready after {report.waited_seconds:,.0f} s")
            yield RawBatch(orders=report.tables.orders, order_items=report.tables.items)
            covered = report.data_end
        self._coverage = Coverage(covered, quarantined, {"orders": count, "order_items": count}, self.client.stats.as_metadata())

    def coverage(self) -> Coverage:
        """What the last fetch covered: up to the last report's data end, with reports counted as pages."""
        return self._coverage
