"""Throttle bound: a day of N orders against the simulator's real quota shape, time / theoretical bound.

The simulator runs the documented quotas (ListOrders 6 + 1/min, ListOrderItems 30 + 1 per 2 s) on a clock
`--time-scale` times faster, with one item call per order (`order_items_page_size=100`, as the bound assumes).
The pipeline's client starts from the documented rates and learns the accelerated ones from the
x-mws-quota-* headers alone. For each size it prints the span from the first to the last API request (the
simulator's own timestamps), the bound max(60 s·(P − 6), 2 s·(N − 30)) / time_scale for the P order pages
and N item calls actually made, their ratio and the RequestThrottled answers. The baseline is a careful
client that ignores the headers and paces on the documented rates with a 25% safety margin.

    python benchmarks/bench_throttle.py                     # 100, 1,000 and 10,000 orders (~7 min)
    python benchmarks/bench_throttle.py --quick             # 100 and 1,000 orders
    python benchmarks/bench_throttle.py --sizes 100 --baseline-sizes ""
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path

from _harness import DAY, client_for, machine, say
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.sources.mws.quotas import FAMILIES, MwsThrottle
from orders_pipeline.sources.throttle import FamilySpec
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig

SAFETY_MARGIN = 1.25


class DocumentedRatesThrottle(MwsThrottle):
    """The baseline: documented rates (scaled like the simulator's clock) plus a margin, headers ignored."""

    def __init__(self, time_scale: float) -> None:
        slower = {name: FamilySpec(spec.burst, spec.restore_seconds * SAFETY_MARGIN) for name, spec in FAMILIES.items()}
        super().__init__(slower, time_scale=time_scale)

    def observe(self, action: str, headers: Mapping[str, str] | None) -> None:
        """Ignore the quota headers."""


def run_day(orders_per_day: int, time_scale: float, throttle: MwsThrottle | None) -> tuple[float, float, int, int, int]:
    """(span s, bound s, order pages, item calls, throttled answers) of one ingested day."""
    config = SimulatorConfig(orders_per_day=orders_per_day, time_scale=time_scale, order_items_page_size=100)
    with MwsSimulator(config) as simulator, client_for(simulator, throttle=throttle) as client:
        with tempfile.TemporaryDirectory() as root:
            report = ingest_day(MwsOrdersSource(client), DAY, Path(root))
        times = [moment for moment, _action in simulator.stats.request_times]
        span = times[-1] - times[0]
        throttled = simulator.stats.throttled
    pages, calls = report.order_pages, report.item_pages
    bound = max(60.0 * (pages - 6), 2.0 * (calls - 30), 0.0) / time_scale
    return span, bound, pages, calls, throttled


def main() -> None:
    """Ingest each size with the pipeline's pacing (and the baseline where asked) and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000")
    parser.add_argument("--sizes", help="comma-separated orders per day (default 100,1000,10000)")
    parser.add_argument("--baseline-sizes", default="100,1000", help="sizes that also run the baseline client")
    parser.add_argument("--time-scale", type=float, default=60.0, help="quota clock speed-up (default 60)")
    args = parser.parse_args()
    sizes = _ints(args.sizes or ("100,1000" if args.quick else "100,1000,10000"))
    baseline_sizes = set(_ints(args.baseline_sizes))
    say(f"machine: {machine()}")
    say(f"quota clock x{args.time_scale:g}; bound = max(60 s·(pages − 6), 2 s·(item calls − 30)) / scale")
    for size in sizes:
        clients = [("pipeline", None)]
        if size in baseline_sizes:
            clients.append((f"documented rates x{SAFETY_MARGIN}", DocumentedRatesThrottle(args.time_scale)))
        for label, throttle in clients:
            span, bound, pages, calls, throttled = run_day(size, args.time_scale, throttle)
            ratio = span / bound if bound else float("nan")
            say(
                f"{size:>6,} orders/day → {calls:,} orders, {pages} order pages | {label:<24} "
                f"{span:8.2f} s vs bound {bound:8.2f} s = {ratio:5.3f}x, {throttled} throttled"
            )
    say("target: ≤ 1.05x the bound and 0 throttled")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    main()
