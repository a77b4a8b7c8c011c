"""One SP-API call done right: paced by the usage plan, authorized by LWA, retried where retrying helps.

The retry policy, all in `Transport.call`:

* 429 QuotaExceeded: the operation's bucket is emptied and the next `acquire` waits for a token to restore
  (`max_throttle_retries` in a row at most);
* 500/503 and connection errors/timeouts: capped exponential backoff with jitter, `max_retries` at most;
* 403 "The access token you provided has expired.": a fresh token, then the call once more (its quota token
  given back: the call was refused before the usage plan);
* a 200 body that is not JSON: retried once (a truncated answer), then `SpApiResponseFormatError`; a body over
  `MAX_BODY_BYTES` or nested deeper than `MAX_JSON_DEPTH` is refused at once;
* every other 4xx raises at once.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from orders_pipeline.sources.call_stats import CallStats
from orders_pipeline.sources.throttle import Throttle
from orders_pipeline.sources.http import NETWORK_ERRORS, backoff_delay, is_loopback, never_connected, read_capped, short_reason
from orders_pipeline.sources.sp_api.errors import (
    SpApiAuthError,
    SpApiConfigurationError,
    SpApiConnectionError,
    SpApiResponseFormatError,
    SpApiServerError,
    SpApiThrottledError,
    error_from_response,
)
from orders_pipeline.sources.sp_api.lwa import LwaTokenClient, check_https_url
from orders_pipeline.sources.sp_api.throttle import new_throttle, observe_rate_limit

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "SpApiCallStats", "Transport", "parse_json"]

log = logging.getLogger("orders_pipeline.sp_api")

MAX_BODY_BYTES = 32 * 1024 * 1024
"""The largest JSON answer accepted (a page of 100 orders with items is well under 1 MB)."""
MAX_JSON_DEPTH = 32
"""The deepest JSON nesting accepted (Amazon's order model nests about 8 levels)."""


@dataclass
class SpApiCallStats(CallStats):
    """`CallStats` (calls per operation, retries, waits, errors) plus token refreshes and duplicates dropped."""

    token_refreshes: int = 0
    expired_token_responses: int = 0
    duplicates_dropped: int = 0

    def as_metadata(self) -> dict[str, int | float]:
        """Flat numbers for run metadata, as the MWS client's, with the SP-API counters added."""
        return {
            **super().as_metadata(),
            "token_refreshes": self.token_refreshes,
            "expired_token_responses": self.expired_token_responses,
            "duplicates_dropped": self.duplicates_dropped,
        }


class _TransientFormatError(SpApiResponseFormatError):
    """A body that did not parse as JSON: worth one more try."""


def parse_json(body: bytes, where: str) -> Any:
    """The JSON value of a body, refusing an oversize one, a malformed one and one nested too deep."""
    if len(body) > MAX_BODY_BYTES:
        raise SpApiResponseFormatError(f"{where} is larger than {MAX_BODY_BYTES:,} bytes; refused")
    try:
        payload = json.loads(body)
    except RecursionError:
        raise SpApiResponseFormatError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels; refused") from None
    except ValueError as exc:
        raise _TransientFormatError(f"{where} is not JSON ({type(exc).__name__} near byte {getattr(exc, 'pos', '?')})") from None
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise SpApiResponseFormatError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels; refused")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return payload


class Transport:
    """Authorized, paced, retried JSON calls to one SP-API regional endpoint."""

    def __init__(
        self,
        endpoint: str,
        tokens: LwaTokenClient,
        *,
        throttle: Throttle | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_throttle_retries: int = 50,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = check_https_url(endpoint, "SP_API_ENDPOINT")
        host = (urlsplit(self.endpoint).hostname or "").lower()
        self._proxies = {"http": None, "https": None} if is_loopback(host) else None
        if session is not None and session.verify is False:
            raise SpApiConfigurationError(
                "TLS certificate verification is disabled on the given requests.Session (verify=False); "
                "it must stay on -> use a CA bundle path instead"
            )
        if timeout <= 0 or max_retries < 0 or max_throttle_retries < 0:
            raise SpApiConfigurationError("timeout must be > 0 and the retry limits >= 0")
        self.tokens = tokens
        self.session = session if session is not None else requests.Session()
        self.throttle = throttle if throttle is not None else new_throttle(clock=clock, sleep=sleep)
        self.stats = SpApiCallStats()
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_throttle_retries = max_throttle_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self.clock = clock
        self.sleep = sleep
        self._rng = rng or random.Random()

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[Any, str | None]:
        """Send one logical call; its parsed JSON answer (200/202) and `x-amzn-RequestId`."""
        failures = throttled = 0
        refreshed = False
        while True:
            self.stats.throttle_wait_seconds += self.throttle.acquire(operation)
            self.stats.calls[operation] = self.stats.calls.get(operation, 0) + 1
            before = self.tokens.refreshes
            token = self.tokens.access_token()
            self.stats.token_refreshes += self.tokens.refreshes - before
            try:
                response = self.session.request(
                    method, self.endpoint + path, params=params, json=body, timeout=self._timeout,
                    headers={"x-amz-access-token": token, "Accept": "application/json",
                             "User-Agent": "orders_pipeline/0.1 (Language=Python)"},
                    allow_redirects=False, proxies=self._proxies, stream=True,
                )
                content = self.read_capped(response, operation, MAX_BODY_BYTES)
            except NETWORK_ERRORS as exc:
                self.stats.connection_errors += 1
                if never_connected(exc):
                    self.throttle.refund(operation)
                if failures >= self._max_retries:
                    raise SpApiConnectionError(
                        f"cannot reach SP-API endpoint {self.endpoint} for {operation} after {failures + 1} attempts "
                        f"({short_reason(exc)}) -> check SP_API_ENDPOINT and network access"
                    ) from None
                failures += 1
                self.backoff(failures)
                continue
            self.throttle.settle(operation)  # the server took the token somewhere before this answer
            request_id = response.headers.get("x-amzn-RequestId")
            observe_rate_limit(self.throttle, operation, response.headers)
            if response.status_code in (200, 202):
                try:
                    payload = parse_json(content, f"the {operation} answer (x-amzn-RequestId {request_id})")
                except _TransientFormatError as exc:
                    self.stats.format_errors += 1
                    if failures >= min(1, self._max_retries):
                        raise SpApiResponseFormatError(str(exc)) from None
                    failures += 1
                    self.backoff(failures)
                    continue
                self.throttle.on_success(operation)
                return payload, request_id
            error = error_from_response(
                response.status_code, content, operation, request_id, redact=self.tokens.secrets()
            )
            if isinstance(error, SpApiAuthError) and error.http_status == 403 and "expired" in error.message.lower():
                self.stats.expired_token_responses += 1
                if not refreshed:
                    refreshed = True
                    self.tokens.invalidate(token)
                    self.throttle.refund(operation)  # refused at the door: no quota spent
                    continue
            elif isinstance(error, SpApiThrottledError):
                self.stats.throttled_responses += 1
                wait = self.throttle.on_throttled(operation)
                log.debug("%s: 429 QuotaExceeded (x-amzn-RequestId %s); next try in %.3fs", operation, request_id, wait)
                throttled += 1
                if throttled <= self._max_throttle_retries:
                    self.stats.retries += 1
                    continue
            elif isinstance(error, SpApiServerError):
                self.stats.server_errors += 1
                if failures < self._max_retries:
                    failures += 1
                    self.backoff(failures)
                    continue
            raise error

    def read_capped(self, response: requests.Response, what: str, limit: int) -> bytes:
        """The body, refused as soon as it passes `limit` bytes (a huge or endless answer cannot exhaust memory)."""
        content = read_capped(response, limit)
        if content is None:
            raise SpApiResponseFormatError(
                f"{what} (x-amzn-RequestId {response.headers.get('x-amzn-RequestId')}) answered with more than "
                f"{limit:,} bytes; refused -> check SP_API_ENDPOINT points at SP-API"
            )
        return content

    def backoff(self, attempt: int) -> None:
        """Sleep before retry `attempt` (1-based): equal-jitter capped exponential backoff."""
        delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, self._rng)
        self.stats.retries += 1
        self.stats.backoff_wait_seconds += delay
        self.sleep(delay)
