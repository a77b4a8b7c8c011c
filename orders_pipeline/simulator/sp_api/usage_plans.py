"""Amazon's default usage plans (rate per second, burst) per operation, as token buckets under the time scale."""

from __future__ import annotations

from ..config import SimulatorConfig
from ..throttle import Throttle

USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
}


def usage_plan_throttle(config: SimulatorConfig) -> Throttle:
    """One bucket per operation: `burst` requests, refilled at `rate` per simulated second."""
    quotas = {operation: (burst, 1.0 / rate) for operation, (rate, burst) in USAGE_PLANS.items()}
    return Throttle(config.time_scale, config.throttling, config.faults.external_throttle, config.seed, quotas)


def rate_limit_header(operation: str) -> str:
    """The x-amzn-RateLimit-Limit value: the operation's rate per second."""
    return f"{USAGE_PLANS[operation][0]:g}"
