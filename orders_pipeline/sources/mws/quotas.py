"""MWS's quotas: the documented family numbers, which Action pays from which family, and the ``x-mws-quota-*``
headers that correct them. The token buckets themselves are the shared `Throttle` (sources/throttle.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from orders_pipeline.sources.throttle import FamilySpec, Throttle

__all__ = ["FAMILIES", "ACTION_FAMILY", "family_of", "MwsThrottle", "parse_quota_time"]

FAMILIES: dict[str, FamilySpec] = {
    "ListOrders": FamilySpec(burst=6, restore_seconds=60.0),
    "ListOrderItems": FamilySpec(burst=30, restore_seconds=2.0),
    "GetOrder": FamilySpec(burst=6, restore_seconds=60.0),
    "GetServiceStatus": FamilySpec(burst=2, restore_seconds=300.0),
}

ACTION_FAMILY: dict[str, str] = {
    "ListOrders": "ListOrders",
    "ListOrdersByNextToken": "ListOrders",
    "ListOrderItems": "ListOrderItems",
    "ListOrderItemsByNextToken": "ListOrderItems",
    "GetOrder": "GetOrder",
    "GetServiceStatus": "GetServiceStatus",
}


def family_of(action: str) -> str:
    """The quota family an Action belongs to (``...ByNextToken`` shares its parent's bucket)."""
    if action in ACTION_FAMILY:
        return ACTION_FAMILY[action]
    if action.endswith("ByNextToken"):
        return action[: -len("ByNextToken")]
    return action


def parse_quota_time(value: str | None) -> datetime | None:
    """Parse ``x-mws-quota-resetsOn`` / ``x-mws-timestamp``: ISO 8601 (``...000Z``) or RFC 1123."""
    if not value:
        return None
    text = value.strip()
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return number


class MwsThrottle(Throttle):
    """The shared `Throttle` seeded with MWS's families, paying each Action from its family, read from MWS headers."""

    def __init__(
        self,
        families: Mapping[str, FamilySpec] | None = None,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        epsilon: float = 0.002,
    ) -> None:
        super().__init__(
            FAMILIES if families is None else families,
            family_of=family_of, time_scale=time_scale, clock=clock, sleep=sleep, epsilon=epsilon,
        )

    def observe(self, action: str, headers: Mapping[str, str] | None) -> None:
        """Correct the action's bucket from ``x-mws-quota-*`` response headers (no-op when absent).

        tokens := remaining, capacity := max and, when the bucket is not full and both the reset instant
        and the server timestamp are given, rate := (max - remaining) / (resetsOn - x-mws-timestamp):
        both instants come from the server's clock, so local clock skew does not matter.
        """
        if not headers:
            return
        lower = {str(k).lower(): v for k, v in headers.items()}
        quota_max = _float(lower.get("x-mws-quota-max"))
        remaining = _float(lower.get("x-mws-quota-remaining"))
        if quota_max is None and remaining is None:
            return
        resets_on = parse_quota_time(lower.get("x-mws-quota-resetson"))
        server_now = parse_quota_time(lower.get("x-mws-timestamp"))
        span = (resets_on - server_now).total_seconds() if resets_on is not None and server_now is not None else None
        self.observe_quota(action, quota_max, remaining, span)

    def on_throttled(self, action: str, headers: Mapping[str, str] | None = None) -> float:
        """RequestThrottled/QuotaExceeded: correct the model from the headers, then empty the bucket (`Throttle`)."""
        self.observe(action, headers)
        return super().on_throttled(action)
