"""Which injected fault (if any) a numbered request meets; each face answers it in its own protocol."""

from __future__ import annotations

import time
from typing import Literal

from .config import Faults
from .stats import SimulatorStats

Fault = Literal["reset", "internal", "unavailable"]


def injected_fault(number: int, faults: Faults, stats: SimulatorStats) -> Fault | None:
    """The fault for request `number` (sleeping first if it is a slow one), counted in `stats`."""
    if number in faults.reset_request_numbers:
        stats.count_fault()
        return "reset"
    if number in faults.slow_request_numbers:
        stats.count_fault()
        time.sleep(faults.slow_seconds)
    if number in faults.internal_error_request_numbers:
        stats.count_fault()
        return "internal"
    every = faults.server_error_every
    failing = number in faults.fail_request_numbers
    periodic = every > 0 and number % every == 0
    if not (failing or periodic):
        return None
    stats.count_fault()
    if periodic and not failing and (number // every) % 2 == 1:
        return "internal"
    return "unavailable"
