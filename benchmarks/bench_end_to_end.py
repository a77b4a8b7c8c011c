"""End to end with throttling off: orders/s and items/s through HTTP + signing + parse + Parquet write.

With the quotas out of the way, what remains is the pipeline's (and the loopback simulator's) own cost per
order: one ListOrderItems round trip per order, parsing, Arrow conversion and the streamed Parquet write.

    python benchmarks/bench_end_to_end.py            # a day of 10,000 orders
    python benchmarks/bench_end_to_end.py --quick    # 2,000 orders
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _harness import DAY, client_for, machine, say
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig


def main() -> None:
    """Ingest one unthrottled day and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 orders")
    parser.add_argument("--orders", type=int, help="orders per simulated day (default 10,000)")
    args = parser.parse_args()
    orders_per_day = args.orders or (2_000 if args.quick else 10_000)
    say(f"machine: {machine()}")
    config = SimulatorConfig(orders_per_day=orders_per_day, throttling=False)
    with MwsSimulator(config) as simulator, client_for(simulator) as client, tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        report = ingest_day(MwsOrdersSource(client), DAY, Path(root))
        seconds = time.perf_counter() - started
        calls = simulator.stats.total_requests
    say(
        f"{report.orders.fetched:,} orders, {report.order_items.fetched:,} items, {calls:,} API calls in {seconds:,.1f} s: "
        f"{report.orders.fetched / seconds:,.0f} orders/s, {report.order_items.fetched / seconds:,.0f} items/s, "
        f"{seconds / calls * 1e3:.2f} ms per call (client and simulator share the machine's cores)"
    )


if __name__ == "__main__":
    main()
