"""The MWS Orders (2013-09-01) client: signed POSTs, paging, window coverage, throttling and retries.

A plain library (no Dagster). Retries live in one place, :meth:`MwsOrdersClient._call`:

* 500/503 (not throttling) and connection errors/timeouts/broken bodies: capped exponential backoff with
  jitter (``backoff_base`` 0.5 s doubling up to ``backoff_max`` 30 s, at most ``max_retries`` retries),
  re-sending the *same* parameters (same NextToken) re-signed with a fresh Timestamp;
* RequestThrottled / QuotaExceeded: the throttle empties the bucket and the next ``acquire`` waits for a
  token; these retries do not count against ``max_retries`` (cap ``max_throttle_retries``);
* a 200 whose body is not the XML we expect: retried once (a transient truncation), then
  :class:`MwsResponseFormatError`;
* NextTokenCorrupted raises :class:`MwsNextTokenError`; every other 4xx raises at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import requests

from orders_pipeline.sources.mws.error_response import error_from_response
from orders_pipeline.sources.mws.errors import (
    MwsConfigurationError,
    MwsConnectionError,
    MwsResponseFormatError,
    MwsServerError,
    MwsThrottledError,
)
from orders_pipeline.sources.mws.parse import (
    OrderItemsPage,
    OrdersPage,
    parse_order_items_page,
    parse_orders_page,
    parse_service_status,
)
from orders_pipeline.sources.http import NETWORK_ERRORS, backoff_delay, is_loopback, never_connected, read_capped, short_reason
from orders_pipeline.sources.call_stats import CallStats
from orders_pipeline.sources.mws.settings import (
    MwsCredentials,
    validate_credentials,
    validate_endpoint,
    validate_marketplaces,
)
from orders_pipeline.sources.mws.signing import canonical_query, percent_encode, signed_params
from orders_pipeline.sources.mws.quotas import MwsThrottle
from orders_pipeline.sources.times import TWO_MINUTES, as_utc, format_utc, truncate_ms

__all__ = ["MwsOrdersClient"]

log = logging.getLogger("orders_pipeline.sources.mws")

T = TypeVar("T")

MAX_GET_ORDER_IDS = 50


class MwsOrdersClient:
    """Client for the MWS Orders API section of one seller over one or more marketplaces."""

    API_PATH = "/Orders/2013-09-01"
    VERSION = "2013-09-01"
    USER_AGENT = "orders_pipeline/0.1 (Language=Python/3.11)"
    MAX_RESULTS_PER_PAGE = 100
    #: bound on ListOrders windows per list_orders call (the server shortening a day again and again)
    MAX_WINDOWS = 500
    #: bound on pages followed through NextToken for one request
    MAX_PAGES = 100_000

    def __init__(
        self,
        endpoint: str,
        credentials: MwsCredentials,
        marketplace_ids: Sequence[str],
        *,
        throttle: MwsThrottle | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_throttle_retries: int = 50,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        buyer_email_salt: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._url, self._host, self._path = validate_endpoint(endpoint, self.API_PATH)
        # a loopback endpoint (the simulator) must never go through an HTTP(S)_PROXY from the environment
        loopback = is_loopback((urlsplit(self._url).hostname or "").lower())
        self._proxies = {"http": None, "https": None} if loopback else None
        self._credentials = validate_credentials(credentials)
        self.marketplace_ids: tuple[str, ...] = validate_marketplaces(marketplace_ids)
        if session is not None and session.verify is False:
            raise MwsConfigurationError(
                "TLS certificate verification is disabled on the given requests.Session (verify=False); "
                "it must stay on -> use a CA bundle path instead"
            )
        if not timeout or timeout <= 0:
            raise MwsConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_retries < 0 or max_throttle_retries < 0:
            raise MwsConfigurationError("max_retries and max_throttle_retries must be >= 0")
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        self._timeout = float(timeout)
        self._max_retries = int(max_retries)
        self._max_throttle_retries = int(max_throttle_retries)
        self._backoff_base = float(backoff_base)
        self._backoff_max = float(backoff_max)
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._buyer_email_salt = buyer_email_salt
        self._rng = rng or random.Random()
        self.throttle = throttle if throttle is not None else MwsThrottle(clock=clock, sleep=sleep)
        self.stats = CallStats()
        self.last_covered_until: datetime | None = None

    def now(self) -> datetime:
        """The client's clock (UTC): what it signs requests with and clamps windows to (now − 2 min)."""
        return as_utc(self._now())

    @property
    def endpoint_url(self) -> str:
        """The full URL the client POSTs to (no credentials in it)."""
        return self._url

    def __repr__(self) -> str:
        return (
            f"MwsOrdersClient(endpoint={self._url!r}, seller_id={self._credentials.seller_id!r}, "
            f"marketplace_ids={list(self.marketplace_ids)!r})"
        )

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> MwsOrdersClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- operations --------------------------------------------------------------------------------

    def list_orders(self, updated_after: datetime, updated_before: datetime) -> Iterator[OrdersPage]:
        """Every page of orders last updated in ``[updated_after, updated_before)``.

        ``updated_before`` is clamped to ``now() - 2 minutes``; an empty window yields nothing. When the
        server echoes an earlier ``LastUpdatedBefore`` than asked, a new ListOrders continues from that
        bound until the window is covered. Each page carries the server's echoed bound of its window;
        afterwards ``last_covered_until`` holds the latest echoed bound reached (``None`` if nothing).
        """
        self.last_covered_until = None
        start = truncate_ms(as_utc(updated_after))
        end = truncate_ms(min(as_utc(updated_before), as_utc(self._now()) - TWO_MINUTES))
        if end <= start:
            log.debug("ListOrders window [%s, %s) is empty after the two-minute clamp", start, end)
            return
        markets = {f"MarketplaceId.Id.{i}": mid for i, mid in enumerate(self.marketplace_ids, start=1)}
        for _window in range(self.MAX_WINDOWS):
            params = {
                "Action": "ListOrders",
                "LastUpdatedAfter": format_utc(start),
                "LastUpdatedBefore": format_utc(end),
                **markets,
                "MaxResultsPerPage": str(self.MAX_RESULTS_PER_PAGE),
            }
            first = self._call("ListOrders", params, self._parse_orders)
            if first.last_updated_before is None:
                log.warning(
                    "ListOrders response (RequestId %s) echoes no LastUpdatedBefore: its pages are kept, "
                    "but the window is not counted as covered",
                    first.request_id,
                )
                yield first
                yield from self._follow("ListOrdersByNextToken", first.next_token, self._parse_orders)
                return
            echoed = as_utc(first.last_updated_before)
            yield first
            for page in self._follow("ListOrdersByNextToken", first.next_token, self._parse_orders):
                if page.last_updated_before is None:
                    page = replace(page, last_updated_before=echoed)
                yield page
            covered = min(echoed, end)
            if self.last_covered_until is None or covered > self.last_covered_until:
                self.last_covered_until = covered
            if covered >= end:
                return
            if covered <= start:
                raise MwsResponseFormatError(
                    f"ListOrders made no progress: the server echoed LastUpdatedBefore "
                    f"{format_utc(echoed)} for a window starting {format_utc(start)} "
                    f"(RequestId {first.request_id}); check the machine clock and MWS_ENDPOINT"
                )
            log.debug(
                "ListOrders window shortened by the server to %s; continuing to %s",
                format_utc(covered), format_utc(end),
            )
            start = covered
        raise MwsResponseFormatError(
            f"ListOrders window still not covered after {self.MAX_WINDOWS} requests "
            f"(covered until {format_utc(self.last_covered_until or start)})"
        )

    def list_order_items(self, amazon_order_id: str) -> Iterator[OrderItemsPage]:
        """Every page of one order's items (ListOrderItems, then ListOrderItemsByNextToken)."""
        if not amazon_order_id or not str(amazon_order_id).strip():
            raise ValueError("amazon_order_id is empty")
        first = self._call(
            "ListOrderItems", {"Action": "ListOrderItems", "AmazonOrderId": str(amazon_order_id).strip()},
            parse_order_items_page,
        )
        yield first
        yield from self._follow("ListOrderItemsByNextToken", first.next_token, parse_order_items_page)

    def get_orders(self, amazon_order_ids: Sequence[str]) -> OrdersPage:
        """GetOrder for up to 50 order ids (one call)."""
        if isinstance(amazon_order_ids, str):
            amazon_order_ids = [amazon_order_ids]
        ids = [str(i).strip() for i in amazon_order_ids if i and str(i).strip()]
        if not 1 <= len(ids) <= MAX_GET_ORDER_IDS:
            raise ValueError(f"GetOrder takes 1 to {MAX_GET_ORDER_IDS} order ids, got {len(ids)}")
        params = {"Action": "GetOrder", **{f"AmazonOrderId.Id.{i}": oid for i, oid in enumerate(ids, start=1)}}
        return self._call("GetOrder", params, self._parse_orders)

    def get_service_status(self) -> str:
        """The Orders section status: GREEN, GREEN_I, YELLOW or RED."""
        return self._call("GetServiceStatus", {"Action": "GetServiceStatus"}, parse_service_status)

    # -- paging ------------------------------------------------------------------------------------

    def _parse_orders(self, body: bytes) -> OrdersPage:
        if self._buyer_email_salt:
            return parse_orders_page(body, buyer_email_salt=self._buyer_email_salt)
        return parse_orders_page(body)

    def _follow(self, action: str, token: str | None, parse: Callable[[bytes], T]) -> Iterator[T]:
        """Follow NextToken pages until the server returns none."""
        seen = 0
        while token:
            seen += 1
            if seen > self.MAX_PAGES:
                raise MwsResponseFormatError(f"{action}: more than {self.MAX_PAGES} pages; giving up")
            page = self._call(action, {"Action": action, "NextToken": token}, parse)
            yield page
            next_token = page.next_token  # type: ignore[attr-defined]
            if next_token == token:
                raise MwsResponseFormatError(f"{action}: the server returned the same NextToken again")
            token = next_token

    # -- the one place that sends requests and retries ---------------------------------------------

    def _call(self, action: str, params: dict[str, str], parse: Callable[[bytes], T]) -> T:
        """Send one logical call (throttled, signed, retried) and parse its 200 body."""
        failures = 0  # 5xx / network / format failures, bounded by max_retries
        throttled = 0
        format_failures = 0
        while True:
            waited = self.throttle.acquire(action)
            self.stats.throttle_wait_seconds += waited
            self.stats.calls[action] = self.stats.calls.get(action, 0) + 1
            body = self._encode(params)
            started = self._clock()
            try:
                response = self._session.post(
                    self._url,
                    data=body,
                    headers=self._headers(),
                    timeout=self._timeout,
                    allow_redirects=False,
                    proxies=self._proxies,
                    stream=True,
                )
                content = _read_capped(response, action)
            except NETWORK_ERRORS as exc:
                self.stats.connection_errors += 1
                if never_connected(exc):
                    self.throttle.refund(action)  # the server never saw it: its bucket is untouched
                reason = short_reason(exc)
                log.debug("%s: network error %s after %.3fs (waited %.3fs)", action, reason, self._clock() - started, waited)
                if failures >= self._max_retries:
                    raise MwsConnectionError(
                        f"cannot reach MWS endpoint {self._url} for {action} after {failures + 1} attempts "
                        f"({reason}) -> check MWS_ENDPOINT and network access"
                    ) from None
                failures += 1
                self._backoff(failures)
                continue
            headers = response.headers
            request_id = headers.get("x-mws-request-id")
            log.debug(
                "%s: HTTP %s RequestId %s in %.3fs (throttle wait %.3fs)",
                action, response.status_code, request_id, self._clock() - started, waited,
            )
            self.throttle.observe(action, headers)
            if response.status_code == 200:
                try:
                    result = parse(content)
                except MwsResponseFormatError as exc:
                    self.stats.format_errors += 1
                    format_failures += 1
                    if format_failures > 1 or failures >= self._max_retries:
                        raise MwsResponseFormatError(
                            f"{action} (RequestId {request_id}) returned an unusable body: {exc}"
                        ) from None
                    failures += 1
                    self._backoff(failures)
                    continue
                self.throttle.on_success(action)
                return result
            error = error_from_response(
                response.status_code, content, action, request_id=request_id, redact=self._secrets(body)
            )
            if isinstance(error, MwsThrottledError):
                self.stats.throttled_responses += 1
                self.throttle.on_throttled(action, headers)
                throttled += 1
                if throttled > self._max_throttle_retries:
                    raise error
                self.stats.retries += 1
                continue
            if isinstance(error, MwsServerError):
                self.stats.server_errors += 1
                if failures >= self._max_retries:
                    raise error
                failures += 1
                self._backoff(failures)
                continue
            raise error

    def _secrets(self, body: str) -> list[str]:
        """Strings that must never reach a message: credentials and this request's signature."""
        creds = self._credentials
        signature = body.rsplit("&Signature=", 1)[-1]
        out = [creds.secret_key, creds.access_key_id, signature, unquote(signature)]
        if creds.auth_token:
            out.append(creds.auth_token)
        return out

    def _backoff(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (1-based): equal-jitter capped exponential backoff."""
        delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, self._rng)
        self.stats.retries += 1
        self.stats.backoff_wait_seconds += delay
        log.debug("retry %d in %.3fs", attempt, delay)
        self._sleep(delay)

    def _encode(self, params: dict[str, str]) -> str:
        """The signed form body (RFC 3986 encoding, %20 for space), freshly timestamped."""
        creds = self._credentials
        signed = signed_params(
            params,
            access_key_id=creds.access_key_id,
            secret_key=creds.secret_key,
            seller_id=creds.seller_id,
            auth_token=creds.auth_token,
            version=self.VERSION,
            method="POST",
            host=self._host,
            path=self._path,
            timestamp=as_utc(self._now()),
        )
        signature = signed.pop("Signature")
        return f"{canonical_query(signed)}&Signature={percent_encode(signature)}"

    def _headers(self) -> dict[str, str]:
        return {
            "Host": self._host,
            "User-Agent": self.USER_AGENT,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Accept": "text/xml, application/xml",
        }


def _read_capped(response: requests.Response, action: str) -> bytes:
    """The (decoded) body, refused once it exceeds MAX_BODY_BYTES: a huge or endless answer cannot exhaust memory."""
    from orders_pipeline.sources.mws.xml import MAX_BODY_BYTES

    content = read_capped(response, MAX_BODY_BYTES)
    if content is None:
        raise MwsResponseFormatError(
            f"{action} (RequestId {response.headers.get('x-mws-request-id')}) answered with a body larger than "
            f"{MAX_BODY_BYTES:,} bytes; refused -> check MWS_ENDPOINT points at MWS"
        )
    return content
