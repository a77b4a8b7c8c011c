"""The seam every orders source implements: a UTC window in; rows of the shared raw tables and what was covered out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import pyarrow as pa

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RawBatch:
    """Rows fetched for the raw tables, in the shared raw schema (sources/raw_schema.py); either may be absent."""

    orders: pa.Table | None = None
    order_items: pa.Table | None = None


@dataclass
class Coverage:
    """What a fetch can vouch for once it has ended."""

    covered_until: datetime | None  # the server's own bound: the window is covered up to here, never further
    quarantined_values: int = 0  # values kept as null because they could not be decoded
    pages: dict[str, int] = field(default_factory=dict)  # raw table -> response pages its rows came in
    api: dict[str, int | float] = field(default_factory=dict)  # calls per operation, throttle waits, retries


class OrdersSource(Protocol):
    """One seller's orders API as ingestion sees it; no Dagster, no storage."""

    name: str  # "mws" or "sp-api", recorded in manifests and metadata
    method: str  # how a window is fetched, e.g. "ListOrders + ListOrderItems"

    def now(self) -> datetime:
        """The source's clock (UTC), which a window that ends in the future is clamped to."""

    def fetch(self, start: datetime, end: datetime, progress: Progress) -> Iterator[RawBatch]:
        """Every order version last updated in [start, end), with its items, in batches of bounded size."""

    def coverage(self) -> Coverage:
        """What the last `fetch` covered, once it is exhausted."""
