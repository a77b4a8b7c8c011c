"""Token-bucket pacing on a fake clock: bursts, steady pacing at the restore rate, header correction."""

from __future__ import annotations

import pytest

from orders_pipeline.sources.mws.quotas import FAMILIES, MwsThrottle, family_of, parse_quota_time


class FakeClock:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class ServerBucket:
    """Independent reference model of the server's bucket: counts calls it would refuse."""

    def __init__(self, burst: float, per_seconds: float, now: float) -> None:
        self.burst, self.rate, self.tokens, self.stamp = burst, 1.0 / per_seconds, burst, now
        self.refused = 0

    def call(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0 - 1e-9:
            self.refused += 1
        else:
            self.tokens -= 1.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kw) -> MwsThrottle:
    return MwsThrottle(clock=clock, sleep=clock.sleep, **kw)


def test_families_and_actions():
    assert family_of("ListOrdersByNextToken") == "ListOrders"
    assert family_of("ListOrderItemsByNextToken") == "ListOrderItems"
    assert family_of("GetOrder") == "GetOrder"
    assert (FAMILIES["ListOrders"].burst, FAMILIES["ListOrders"].restore_seconds) == (6, 60)
    assert (FAMILIES["ListOrderItems"].burst, FAMILIES["ListOrderItems"].restore_seconds) == (30, 2)
    assert (FAMILIES["GetOrder"].burst, FAMILIES["GetOrder"].restore_seconds) == (6, 60)
    assert (FAMILIES["GetServiceStatus"].burst, FAMILIES["GetServiceStatus"].restore_seconds) == (2, 300)


def test_burst_is_free_then_paced_at_restore_rate(clock):
    t = make(clock)
    start = clock.now
    waits = [t.acquire("ListOrderItems") for _ in range(30)]
    assert waits == [0.0] * 30 and clock.now == start  # the whole burst without sleeping
    for _ in range(100):
        t.acquire("ListOrderItemsByNextToken")  # shares the bucket
    elapsed = clock.now - start
    assert elapsed == pytest.approx(100 * 2.0, rel=0.005)  # 1 per 2 s, no fat margin
    assert elapsed >= 100 * 2.0  # never early


def test_day_of_orders_reaches_theoretical_bound_without_refusals(clock):
    t = make(clock)
    server = ServerBucket(30, 2.0, clock.now)
    start = clock.now
    n = 1000
    for _ in range(n):
        t.acquire("ListOrderItems")
        server.call(clock.now)
        clock.now += 0.01  # request latency
    bound = (n - 30) * 2.0
    assert server.refused == 0
    assert clock.now - start <= 1.05 * bound


def test_families_are_independent(clock):
    t = make(clock)
    for _ in range(6):
        t.acquire("ListOrders")
    assert t.acquire("ListOrderItems") == 0.0
    assert t.acquire("GetOrder") == 0.0
    waited = t.acquire("ListOrdersByNextToken")
    assert waited == pytest.approx(60.0, abs=0.01)


def test_no_call_when_bucket_empty(clock):
    t = make(clock)
    t.acquire("GetServiceStatus")
    t.acquire("GetServiceStatus")
    before = clock.now
    waited = t.acquire("GetServiceStatus")
    assert waited >= 300.0 and clock.now - before >= 300.0
    tokens, _, _ = t.state("GetServiceStatus")
    assert tokens < 1.0  # the token restored was spent, none left over


def test_header_correction_derives_rate_and_tokens(clock):
    t = make(clock)
    headers = {
        "x-mws-quota-max": "30.0",
        "x-mws-quota-remaining": "10.0",
        "x-mws-quota-resetsOn": "2024-03-03T10:00:10.000Z",  # full in 10 s for 20 tokens: 2 tokens/s
        "x-mws-timestamp": "2024-03-03T10:00:00.000Z",
    }
    t.observe("ListOrderItems", headers)
    tokens, cap, rate = t.state("ListOrderItems")
    assert (tokens, cap) == (10.0, 30.0)
    assert rate == pytest.approx(2.0)
    start = clock.now
    for _ in range(10 + 20):
        t.acquire("ListOrderItems")
    assert clock.now - start == pytest.approx(20 / 2.0, rel=0.01)


def test_header_correction_is_case_insensitive_and_skew_free(clock):
    t = make(clock)
    # server clock is a year off from ours: only the difference of the two server instants matters
    t.observe(
        "ListOrders",
        {
            "X-MWS-QUOTA-MAX": "6.0",
            "X-Mws-Quota-Remaining": "0.0",
            "x-mws-quota-resetson": "2031-01-01T00:03:00.000Z",
            "x-mws-timestamp": "2031-01-01T00:00:00.000Z",
        },
    )
    tokens, cap, rate = t.state("ListOrders")
    assert tokens == 0.0 and cap == 6.0 and rate == pytest.approx(6 / 180)
    assert t.acquire("ListOrders") == pytest.approx(30.0, abs=0.01)


def test_absent_or_garbage_headers_keep_seeded_model(clock):
    t = make(clock)
    t.acquire("ListOrders")
    before = t.state("ListOrders")
    t.observe("ListOrders", {})
    t.observe("ListOrders", None)
    t.observe("ListOrders", {"x-mws-request-id": "abc", "x-mws-quota-max": "nan?"})
    assert t.state("ListOrders") == before


def test_full_bucket_header_keeps_rate(clock):
    t = make(clock)
    t.observe("ListOrderItems", {"x-mws-quota-max": "30.0", "x-mws-quota-remaining": "30.0"})
    assert t.state("ListOrderItems") == (30.0, 30.0, 0.5)


def test_on_throttled_empties_bucket_and_escalates(clock):
    t = make(clock)
    wait1 = t.on_throttled("ListOrderItems", {})
    assert wait1 == pytest.approx(2.0, abs=0.01)
    assert t.acquire("ListOrderItems") == pytest.approx(2.0, abs=0.01)
    wait2 = t.on_throttled("ListOrderItems", {})
    assert wait2 == pytest.approx(4.0, abs=0.01)  # second throttle in a row: someone else spends tokens
    t.on_success("ListOrderItems")
    assert t.on_throttled("ListOrderItems") == pytest.approx(2.0, abs=0.01)


def test_time_scale_speeds_up_seeded_rates(clock):
    t = make(clock, time_scale=600)
    for _ in range(6):
        t.acquire("ListOrders")
    assert t.acquire("ListOrders") == pytest.approx(0.1, abs=0.005)


def test_parse_quota_time_formats():
    iso = parse_quota_time("2020-06-15T09:12:00.000Z")
    rfc = parse_quota_time("Mon, 15 Jun 2020 09:12:00 GMT")
    assert iso == rfc and iso.tzinfo is not None
    assert parse_quota_time("garbage") is None and parse_quota_time(None) is None


def test_a_slow_answer_from_a_full_bucket_is_settled_so_no_paced_call_is_early(clock):
    # the first request reaches the server 5 s after its token was spent (a busy machine): the server's full bucket
    # starts restoring then, ours at the send; settling on the answer keeps ours from running one token ahead
    t = make(clock)
    server = ServerBucket(30, 2.0, clock.now - 100.0)
    start = clock.now
    t.acquire("ListOrderItems")
    clock.now += 5.0
    server.call(clock.now)
    t.settle("ListOrderItems")
    for _ in range(40):
        t.acquire("ListOrderItems")
        server.call(clock.now)
        t.settle("ListOrderItems")
    assert server.refused == 0
    assert clock.now - start == pytest.approx(5.0 + (41 - 30) * 2.0, rel=0.005)  # the burst, then 1 per 2 s: no slower


def test_settling_below_full_changes_nothing(clock):
    t = make(clock)
    for _ in range(10):
        t.acquire("ListOrderItems")
    clock.now += 0.5
    before = t.state("ListOrderItems")
    t.settle("ListOrderItems")
    t.settle("ListOrderItems")  # nothing left to settle
    assert t.state("ListOrderItems") == before
