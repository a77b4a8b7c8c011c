"""Per-family token buckets with Amazon's documented quotas, and the quota headers they report."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

FAMILY_OF_ACTION = {
    "ListOrders": "ListOrders",
    "ListOrdersByNextToken": "ListOrders",
    "ListOrderItems": "ListOrderItems",
    "ListOrderItemsByNextToken": "ListOrderItems",
    "GetOrder": "GetOrder",
    "GetServiceStatus": "GetServiceStatus",
}
QUOTAS = {  # family: (maximum request quota, seconds to restore one request)
    "ListOrders": (6, 60.0),
    "ListOrderItems": (30, 2.0),
    "GetOrder": (6, 60.0),
    "GetServiceStatus": (2, 300.0),
}
_EXTERNAL_DRAIN_PROBABILITY = 0.02


@dataclass(frozen=True)
class QuotaSnapshot:
    """A bucket's state at one instant, as the quota headers report it."""

    allowed: bool
    maximum: int
    tokens: float
    now: datetime
    resets_on: datetime

    def headers(self) -> dict[str, str]:
        """x-mws-quota-* headers; resetsOn is rounded up to the millisecond so it is never early."""
        resets = self.resets_on
        extra_us = (1000 - resets.microsecond % 1000) % 1000
        resets = resets + timedelta(microseconds=extra_us)
        return {
            "x-mws-quota-max": f"{float(self.maximum):.1f}",
            "x-mws-quota-remaining": f"{float(math.floor(self.tokens + 1e-9)):.1f}",
            "x-mws-quota-resetsOn": resets.strftime("%Y-%m-%dT%H:%M:%S.") + f"{resets.microsecond // 1000:03d}Z",
        }


class TokenBucket:
    """A leaky bucket with fractional tokens, refilled on monotonic time."""

    def __init__(self, maximum: int, seconds_per_token: float, time_scale: float, enforce: bool) -> None:
        self.maximum = maximum
        self.rate = time_scale / seconds_per_token  # tokens per second
        self.enforce = enforce
        self._tokens = float(maximum)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(float(self.maximum), self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _snapshot(self, allowed: bool, wall_now: datetime) -> QuotaSnapshot:
        tokens = self._tokens if self.enforce else float(self.maximum)
        wait = (self.maximum - tokens) / self.rate
        return QuotaSnapshot(allowed, self.maximum, tokens, wall_now, wall_now + timedelta(seconds=wait))

    def acquire(self, wall_now: datetime, drain_first: bool = False) -> QuotaSnapshot:
        """Take one token if there is one (throttled requests take none)."""
        with self._lock:
            self._refill()
            if not self.enforce:
                return self._snapshot(True, wall_now)
            if drain_first:
                self._tokens = 0.0
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
            return self._snapshot(allowed, wall_now)

    def peek(self, wall_now: datetime) -> QuotaSnapshot:
        """The bucket's state without taking a token."""
        with self._lock:
            self._refill()
            return self._snapshot(True, wall_now)


class Throttle:
    """One bucket per operation family for the simulated seller (MWS quotas unless told otherwise)."""

    def __init__(
        self,
        time_scale: float,
        enforce: bool,
        external_pressure: bool,
        seed: int,
        quotas: Mapping[str, tuple[int, float]] = QUOTAS,
    ) -> None:
        self._buckets = {
            family: TokenBucket(maximum, seconds, time_scale, enforce) for family, (maximum, seconds) in quotas.items()
        }
        self._external_pressure = external_pressure and enforce
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()

    def acquire(self, family: str, wall_now: datetime) -> QuotaSnapshot:
        """Spend a request from the family's bucket; another 'process' may drain it first."""
        drain = False
        if self._external_pressure:
            with self._random_lock:
                drain = self._random.random() < _EXTERNAL_DRAIN_PROBABILITY
        return self._buckets[family].acquire(wall_now, drain_first=drain)

    def peek(self, family: str, wall_now: datetime) -> QuotaSnapshot:
        """The family's bucket state, untouched."""
        return self._buckets[family].peek(wall_now)
