"""The SP-API Orders v2026-01-01 client: searchOrders pages (orders with their items) over a window, and getOrder.

A plain library (no Dagster). Calls go through `Transport` (usage-plan pacing, LWA token, retries); answers
become raw-schema record batches through `orders_json`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from urllib.parse import quote

import pyarrow as pa
import requests

from orders_pipeline.sources.times import TWO_MINUTES, as_utc, format_utc, truncate_ms
from orders_pipeline.sources.throttle import Throttle
from orders_pipeline.sources.values import decode_timestamp
from orders_pipeline.sources.sp_api.errors import SpApiConfigurationError, SpApiResponseFormatError
from orders_pipeline.sources.sp_api.lwa import LwaTokenClient
from orders_pipeline.sources.sp_api.orders_json import map_orders
from orders_pipeline.sources.sp_api.transport import SpApiCallStats, Transport

__all__ = ["INCLUDED_DATA", "PERSONAL_DATA", "SpApiOrdersPage", "SpApiOrdersClient", "marketplace_list"]

log = logging.getLogger("orders_pipeline.sp_api")

INCLUDED_DATA = ("FULFILLMENT", "PROCEEDS", "PROMOTION", "CANCELLATION", "TAX")
"""The datasets the raw tables need: status, channel, quantities and ship windows (FULFILLMENT), totals and line
amounts (PROCEEDS), promotion ids (PROMOTION), buyer cancel requests (CANCELLATION), tax collection (TAX)."""
PERSONAL_DATA = ("BUYER", "RECIPIENT")
"""Asked for only when the user opts in: the buyer email is then stored as its salted hash, the address as geography."""
MAX_MARKETPLACES = 50


def marketplace_list(marketplace_ids: Sequence[str] | str) -> tuple[str, ...]:
    """Distinct, stripped marketplace ids (a comma-separated string is split); 1 to 50 of them."""
    if isinstance(marketplace_ids, str):
        marketplace_ids = marketplace_ids.split(",")
    ids = tuple(dict.fromkeys(str(mid).strip() for mid in marketplace_ids or () if str(mid).strip()))
    if not ids:
        raise SpApiConfigurationError(
            "no marketplace id given -> set SP_API_MARKETPLACE_IDS (comma-separated, e.g. ATVPDKIKX0DER)"
        )
    if len(ids) > MAX_MARKETPLACES:
        raise SpApiConfigurationError(
            f"{len(ids)} marketplace ids given, SP-API accepts at most {MAX_MARKETPLACES} -> shorten SP_API_MARKETPLACE_IDS"
        )
    return ids


@dataclass(frozen=True)
class SpApiOrdersPage:
    """One searchOrders page (or a getOrder answer) in the raw schema, with its paging envelope."""

    orders: pa.RecordBatch
    items: pa.RecordBatch
    quarantined_values: int
    next_token: str | None
    last_updated_before: datetime | None  # the window bound the server echoed (None for getOrder)
    request_id: str | None


class SpApiOrdersClient:
    """Orders v2026-01-01 for one seller over one or more marketplaces."""

    SEARCH_PATH = "/orders/2026-01-01/orders"
    MAX_RESULTS_PER_PAGE = 100
    #: bound on searches per window (the server shortening a day again and again)
    MAX_WINDOWS = 500
    #: bound on pages followed through nextToken for one search
    MAX_PAGES = 100_000

    def __init__(
        self,
        endpoint: str,
        tokens: LwaTokenClient,
        marketplace_ids: Sequence[str] | str,
        *,
        include_personal_data: bool = False,
        buyer_email_salt: str | None = None,
        throttle: Throttle | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_throttle_retries: int = 50,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        rng: random.Random | None = None,
    ) -> None:
        self.transport = Transport(
            endpoint, tokens, throttle=throttle, session=session, timeout=timeout, max_retries=max_retries,
            max_throttle_retries=max_throttle_retries, backoff_base=backoff_base, backoff_max=backoff_max,
            clock=clock, sleep=sleep, rng=rng,
        )
        self.marketplace_ids = marketplace_list(marketplace_ids)
        self.included_data = INCLUDED_DATA + (PERSONAL_DATA if include_personal_data else ())
        self._buyer_email_salt = buyer_email_salt if include_personal_data else None
        self._now = now
        self.last_covered_until: datetime | None = None

    @property
    def stats(self) -> SpApiCallStats:
        """Calls per operation, throttle waits, retries, token refreshes (`stats.as_metadata()` for run metadata)."""
        return self.transport.stats

    @property
    def throttle(self) -> Throttle:
        """The usage-plan buckets this client paces its calls with."""
        return self.transport.throttle

    @property
    def endpoint_url(self) -> str:
        """The regional base URL (no credentials in it)."""
        return self.transport.endpoint

    def now(self) -> datetime:
        """The client's clock (UTC): windows are clamped to now − 2 minutes, as Amazon requires."""
        return as_utc(self._now())

    def __repr__(self) -> str:
        return f"SpApiOrdersClient(endpoint={self.endpoint_url!r}, marketplace_ids={list(self.marketplace_ids)!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self.transport.session.close()

    def __enter__(self) -> SpApiOrdersClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- operations --------------------------------------------------------------------------------------

    def search_orders(
        self, updated_after: datetime, updated_before: datetime, marketplace_ids: Sequence[str] | None = None
    ) -> Iterator[SpApiOrdersPage]:
        """Every page of orders last updated in ``[updated_after, updated_before)``, each order with its items.

        ``updated_before`` is clamped to ``now() - 2 minutes``; an empty window yields nothing. When the server
        echoes an earlier ``lastUpdatedBefore`` than asked, a new search continues from that bound until the
        window is covered; ``last_covered_until`` then holds the latest bound reached (``None`` if none).
        An order version (id, lastUpdatedTime) repeated on a later page is dropped (``stats.duplicates_dropped``).
        """
        self.last_covered_until = None
        markets = self.marketplace_ids if marketplace_ids is None else marketplace_list(marketplace_ids)
        start = truncate_ms(as_utc(updated_after))
        end = truncate_ms(min(as_utc(updated_before), self.now() - TWO_MINUTES))
        if end <= start:
            return
        seen: set[tuple[str, str]] = set()
        for _window in range(self.MAX_WINDOWS):
            query = {
                "lastUpdatedAfter": format_utc(start),
                "lastUpdatedBefore": format_utc(end),
                "marketplaceIds": ",".join(markets),
                "maxResultsPerPage": str(self.MAX_RESULTS_PER_PAGE),
                "includedData": ",".join(self.included_data),
            }
            first = self._search(query, seen)
            yield first
            echoed = first.last_updated_before
            for page in self._follow(query, first.next_token, seen):
                yield page if page.last_updated_before is not None else replace(page, last_updated_before=echoed)
            if echoed is None:
                log.warning("searchOrders (x-amzn-RequestId %s) echoes no lastUpdatedBefore: window not counted as covered",
                            first.request_id)
                return
            covered = min(echoed, end)
            if self.last_covered_until is None or covered > self.last_covered_until:
                self.last_covered_until = covered
            if covered >= end:
                return
            if covered <= start:
                raise SpApiResponseFormatError(
                    f"searchOrders made no progress: the server echoed lastUpdatedBefore {format_utc(echoed)} "
                    f"for a window starting {format_utc(start)} (x-amzn-RequestId {first.request_id}) "
                    "-> check the machine clock and SP_API_ENDPOINT"
                )
            log.debug("searchOrders window shortened to %s; continuing to %s", covered, end)
            start = covered
        raise SpApiResponseFormatError(
            f"searchOrders window still not covered after {self.MAX_WINDOWS} searches "
            f"(covered until {format_utc(self.last_covered_until or start)})"
        )

    def get_order(self, order_id: str) -> SpApiOrdersPage:
        """One order with its items (getOrder), in the raw schema."""
        if not order_id or not str(order_id).strip():
            raise ValueError("order_id is empty")
        path = f"{self.SEARCH_PATH}/{quote(str(order_id).strip(), safe='')}"
        payload, request_id = self.transport.call(
            "getOrder", "GET", path, params={"includedData": ",".join(self.included_data)}
        )
        order = payload.get("order") if isinstance(payload, dict) else None
        if not isinstance(order, dict):
            raise SpApiResponseFormatError(f"the getOrder answer (x-amzn-RequestId {request_id}) has no order object")
        mapped = map_orders([order], buyer_email_salt=self._buyer_email_salt)
        return SpApiOrdersPage(mapped.orders, mapped.items, mapped.quarantined_values, None, None, request_id)

    # -- paging -----------------------------------------------------------------------------------------

    def _follow(self, query: dict[str, str], token: str | None, seen: set[tuple[str, str]]) -> Iterator[SpApiOrdersPage]:
        """The next pages: the same query repeated with each page's nextToken, until none comes."""
        pages = 0
        while token:
            pages += 1
            if pages > self.MAX_PAGES:
                raise SpApiResponseFormatError(f"searchOrders: more than {self.MAX_PAGES} pages; giving up")
            page = self._search({**query, "paginationToken": token}, seen)
            yield page
            if page.next_token == token:
                raise SpApiResponseFormatError("searchOrders: the server returned the same nextToken again")
            token = page.next_token

    def _search(self, params: dict[str, str], seen: set[tuple[str, str]]) -> SpApiOrdersPage:
        payload, request_id = self.transport.call("searchOrders", "GET", self.SEARCH_PATH, params=params)
        where = f"the searchOrders answer (x-amzn-RequestId {request_id})"
        orders = payload.get("orders") if isinstance(payload, dict) else None
        if not isinstance(orders, list):
            raise SpApiResponseFormatError(f"{where} has no orders list")
        fresh = []
        for order in orders:
            key = (str(order.get("orderId")), str(order.get("lastUpdatedTime"))) if isinstance(order, dict) else None
            if key is not None and key in seen:
                self.stats.duplicates_dropped += 1
                continue
            if key is not None:
                seen.add(key)
            fresh.append(order)
        mapped = map_orders(fresh, buyer_email_salt=self._buyer_email_salt)
        pagination = payload.get("pagination")
        token = pagination.get("nextToken") if isinstance(pagination, dict) else None
        return SpApiOrdersPage(
            orders=mapped.orders,
            items=mapped.items,
            quarantined_values=mapped.quarantined_values,
            next_token=token.strip() or None if isinstance(token, str) else None,
            last_updated_before=_echoed_bound(payload.get("lastUpdatedBefore"), where),
            request_id=request_id,
        )


def _echoed_bound(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    decoded = decode_timestamp(value) if isinstance(value, str) else None
    if decoded is None:
        raise SpApiResponseFormatError(f"{where}: the echoed lastUpdatedBefore {value!r} is not a timestamp")
    return decoded
