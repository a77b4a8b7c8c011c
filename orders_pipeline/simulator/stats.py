"""Thread-safe counters of what the simulator was asked and answered."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class SimulatorStats:
    """Counters for tests and benchmarks; read them, the server writes them."""

    requests_by_action: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    request_times: list[tuple[float, str]] = field(default_factory=list)
    faults_injected: int = 0
    _requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_requests(self) -> int:
        """Number of requests received so far."""
        return self._requests

    def count_request(self, action: str) -> int:
        """Record a request and return its 1-based number."""
        with self._lock:
            self._requests += 1
            self.requests_by_action[action] = self.requests_by_action.get(action, 0) + 1
            self.request_times.append((time.monotonic(), action))
            return self._requests

    def count_error(self, code: str) -> None:
        """Record an error answer (RequestThrottled and SP-API's QuotaExceeded also count as throttled)."""
        with self._lock:
            self.errors_by_code[code] = self.errors_by_code.get(code, 0) + 1
            if code in ("RequestThrottled", "QuotaExceeded"):
                self.throttled += 1

    def count_fault(self) -> None:
        """Record an injected fault."""
        with self._lock:
            self.faults_injected += 1
