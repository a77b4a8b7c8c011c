"""What a source's client did, for run metadata: calls per operation, retries, throttling and failures seen."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallStats:
    """What a client did: calls per operation, retries, throttling and failures seen."""

    calls: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    throttled_responses: int = 0
    throttle_wait_seconds: float = 0.0
    backoff_wait_seconds: float = 0.0
    server_errors: int = 0
    connection_errors: int = 0
    format_errors: int = 0

    def as_metadata(self) -> dict[str, int | float]:
        """Flat numbers for run metadata: ``calls_total``, ``calls_<Action>``, retries, waits, errors."""
        out: dict[str, int | float] = {"calls_total": sum(self.calls.values())}
        for action in sorted(self.calls):
            out[f"calls_{action}"] = self.calls[action]
        out.update(
            retries=self.retries,
            throttled_responses=self.throttled_responses,
            throttle_wait_seconds=round(self.throttle_wait_seconds, 3),
            backoff_wait_seconds=round(self.backoff_wait_seconds, 3),
            server_errors=self.server_errors,
            connection_errors=self.connection_errors,
            format_errors=self.format_errors,
        )
        return out
