"""Token buckets per quota family: planned pacing that spends tokens exactly as they restore.

Each family (operations sharing one quota) has a bucket seeded from the numbers the source gives
(`sources/mws/quotas.py`, `sources/sp_api/throttle.py`) and corrected from what the server says of it
(`observe_quota`, `observe_rate`). ``acquire`` sleeps *before* a call until a whole token is available, so no call
is sent that the bucket cannot pay for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["FamilySpec", "Throttle"]

log = logging.getLogger("orders_pipeline.sources.throttle")


@dataclass(frozen=True)
class FamilySpec:
    """A documented quota: ``burst`` requests at once, one more restored every ``restore_seconds``."""

    burst: float
    restore_seconds: float

    @property
    def rate(self) -> float:
        """Tokens restored per second."""
        return 1.0 / self.restore_seconds


UNKNOWN_FAMILY = FamilySpec(burst=1, restore_seconds=60.0)
"""The cautious quota of a family the throttle was not given."""


def _same(operation: str) -> str:
    return operation


class _Bucket:
    """Continuous token bucket: ``tokens`` at clock time ``stamp``, restoring ``rate`` per second."""

    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        """Add the tokens restored since the last look, up to the burst."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def seconds_until(self, need: float) -> float:
        """How long until the bucket holds `need` tokens."""
        missing = need - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


class Throttle:
    """Per-family token buckets shared by every call of one seller/developer pair.

    ``families`` seeds a bucket per family (no default: each source passes its own); ``family_of`` names the
    family of an operation (by default the operation itself). ``clock`` (monotonic seconds) and ``sleep`` are
    injectable so tests run instantly on a fake clock. ``time_scale`` > 1 makes the seeded restore rates that many
    times faster (for a simulator that runs its quotas on an accelerated clock). ``epsilon`` is the small margin
    added to each computed wait.
    Thread-safe: one lock guards the buckets; sleeping happens outside it.
    """

    #: cap on consecutive-throttle escalation (waits of up to this many restore periods)
    MAX_THROTTLE_STREAK = 8

    def __init__(
        self,
        families: Mapping[str, FamilySpec],
        *,
        family_of: Callable[[str], str] = _same,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        epsilon: float = 0.002,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self._specs = dict(families)
        self._family_of = family_of
        self._time_scale = float(time_scale)
        self._clock = clock
        self._sleep = sleep
        self._epsilon = max(0.0, float(epsilon))
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._streak: dict[str, int] = {}
        self._last_spend: dict[str, tuple[float, float]] = {}  # family -> (clock at the spend, tokens below full then)

    # -- model -------------------------------------------------------------------------------------

    def _bucket(self, family: str, now: float) -> _Bucket:
        bucket = self._buckets.get(family)
        if bucket is None:
            spec = self._specs.get(family) or UNKNOWN_FAMILY
            bucket = _Bucket(float(spec.burst), spec.rate * self._time_scale, now)
            self._buckets[family] = bucket
        return bucket

    def state(self, action: str) -> tuple[float, float, float]:
        """``(tokens, capacity, rate per second)`` of the action's bucket right now (for tests, metrics)."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(self._family_of(action), now)
            bucket.refill(now)
            return bucket.tokens, bucket.capacity, bucket.rate

    # -- API ---------------------------------------------------------------------------------------

    def acquire(self, action: str) -> float:
        """Sleep until the action's bucket holds a whole token, spend it, return the seconds waited."""
        family = self._family_of(action)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                bucket = self._bucket(family, now)
                bucket.refill(now)
                if bucket.tokens >= 1.0:
                    self._last_spend[family] = (now, bucket.capacity - bucket.tokens)
                    bucket.tokens -= 1.0
                    return waited
                wait = bucket.seconds_until(1.0) + self._epsilon
            if waited == 0.0:
                log.debug("throttle: %s waits %.3fs for a %s token", action, wait, family)
            self._sleep(wait)
            waited += wait

    def settle(self, action: str) -> None:
        """The call that last spent from the action's bucket has its answer: count its token as taken now at the latest.

        The server takes the token when the request arrives, somewhere between our spend and the answer. Below full
        that changes nothing, but a full bucket starts restoring at the spend: ours at the send, the server's at the
        arrival. Taking back what ours restored in between beyond what it lacked at the spend (at most the one token)
        keeps ours from running ahead of the server's, so a slow call from a full bucket (a first call held up by a
        busy machine) cannot make the first call paced past the burst early.
        """
        family = self._family_of(action)
        with self._lock:
            spend = self._last_spend.pop(family, None)
            if spend is None:
                return
            spent_at, below_full = spend
            now = self._clock()
            bucket = self._bucket(family, now)
            bucket.refill(now)
            bucket.tokens -= max(0.0, min(1.0, (now - spent_at) * bucket.rate - below_full))

    def observe_quota(
        self, action: str, quota_max: float | None, remaining: float | None, seconds_to_reset: float | None = None
    ) -> None:
        """Correct the action's bucket from the quota the server reported (a None part is left as it is).

        tokens := remaining, capacity := max and, when the bucket is not full and the quota refills in
        ``seconds_to_reset`` (> 0, in the server's clock), rate := (max - remaining) / seconds_to_reset.
        """
        if quota_max is None and remaining is None:
            return
        family = self._family_of(action)
        with self._lock:
            now = self._clock()
            bucket = self._bucket(family, now)
            bucket.refill(now)
            if quota_max is not None and quota_max >= 1:
                bucket.capacity = quota_max
            if remaining is not None:
                bucket.tokens = max(0.0, min(remaining, bucket.capacity))
                bucket.stamp = now
                if seconds_to_reset is not None and remaining < bucket.capacity and seconds_to_reset > 0:
                    bucket.rate = (bucket.capacity - bucket.tokens) / seconds_to_reset
            log.debug(
                "throttle: %s bucket corrected to %.3f/%.1f tokens, %.5f tokens/s",
                family, bucket.tokens, bucket.capacity, bucket.rate,
            )

    def observe_rate(self, action: str, rate_per_second: float) -> None:
        """Correct the action's restore rate from one the server announced (in API time, scaled like the seeds)."""
        if not rate_per_second > 0 or rate_per_second == float("inf"):
            return
        with self._lock:
            now = self._clock()
            bucket = self._bucket(self._family_of(action), now)
            bucket.refill(now)
            bucket.rate = rate_per_second * self._time_scale

    def refund(self, action: str) -> None:
        """Give back the token of a call that never reached the server (connection refused)."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(self._family_of(action), now)
            bucket.refill(now)
            bucket.tokens = min(bucket.capacity, bucket.tokens + 1.0)

    def on_success(self, action: str) -> None:
        """A call of this family went through: reset the consecutive-throttle escalation."""
        with self._lock:
            self._streak.pop(self._family_of(action), None)

    def on_throttled(self, action: str) -> float:
        """The server answered that the quota is spent (429, RequestThrottled, QuotaExceeded): its bucket is empty.

        Empties the bucket so the next ``acquire`` waits until a token restores. Repeated throttling in a row
        (someone else spends this quota) lengthens the wait one restore period per occurrence, capped. Returns the
        wait the next ``acquire`` will do.
        """
        family = self._family_of(action)
        with self._lock:
            now = self._clock()
            bucket = self._bucket(family, now)
            bucket.refill(now)
            streak = min(self._streak.get(family, 0) + 1, self.MAX_THROTTLE_STREAK)
            self._streak[family] = streak
            bucket.tokens = -float(streak - 1)
            bucket.stamp = now
            return bucket.seconds_until(1.0) + self._epsilon
