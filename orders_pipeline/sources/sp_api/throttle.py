"""SP-API usage plans as token buckets: the shared `Throttle`, seeded per operation and corrected by the server.

Each operation has its own usage plan (rate per second, burst). `x-amzn-RateLimit-Limit` on an answer gives
the rate actually applied to this seller (it may be higher than the default), and corrects the bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from orders_pipeline.sources.throttle import FamilySpec, Throttle

__all__ = ["USAGE_PLANS", "MARGIN_SECONDS", "new_throttle", "observe_rate_limit"]


def _plan(rate_per_second: float, burst: int) -> FamilySpec:
    return FamilySpec(burst=burst, restore_seconds=1.0 / rate_per_second)


USAGE_PLANS: dict[str, FamilySpec] = {
    "searchOrders": _plan(0.0056, 20),
    "getOrder": _plan(0.5, 30),
    "createReport": _plan(0.0167, 15),
    "getReport": _plan(2.0, 15),
    "getReportDocument": _plan(0.0167, 15),
}
"""Amazon's default usage plans (Orders v2026-01-01, Reports 2021-06-30)."""
MARGIN_SECONDS = 0.05
"""Added to each computed wait: the server's bucket sees a call a few ms after ours and latency jitters; 50 ms is
nothing against a 180 s restore, and keeps a fast simulator clock (time_scale 600) from seeing a call early."""


def new_throttle(
    *,
    time_scale: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Throttle:
    """Buckets for every SP-API operation, full at the start; `time_scale` > 1 for a simulator's fast clock."""
    return Throttle(USAGE_PLANS, time_scale=time_scale, clock=clock, sleep=sleep, epsilon=MARGIN_SECONDS)


def observe_rate_limit(throttle: Throttle, operation: str, headers: Mapping[str, str]) -> None:
    """Correct the operation's restore rate from `x-amzn-RateLimit-Limit` when the answer carries a usable one."""
    value = headers.get("x-amzn-RateLimit-Limit")
    if value is None:
        return
    try:
        rate = float(value.strip())
    except ValueError:
        return
    throttle.observe_rate(operation, rate)
