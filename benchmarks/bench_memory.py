"""Peak memory: ingest one day of N orders (throttling off) and report the peak RSS above the process baseline.

Each size runs in a fresh child process (so peaks do not mix): the child imports Python + Dagster + the
pipeline, records its RSS (the baseline), ingests the day from the simulator into a temporary data dir and
reports VmHWM (peak RSS) from /proc/self/status. The simulator is the remote API here: it serves from a
process of its own (spawned before the baseline), so only the pipeline's memory is in the peak.

    python benchmarks/bench_memory.py            # 10,000 and 100,000 orders (~2-3 items each)
    python benchmarks/bench_memory.py --quick    # 2,000 and 20,000 orders
    python benchmarks/bench_memory.py --duplicates   # the server also repeats older versions across pages
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import DAY, client_for, machine, remote_simulator, say

TARGET_MB = 150


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(orders_per_day: int, duplicates: bool) -> None:
    """Run in the child: baseline, one ingested day, peak; print one JSON line."""
    import dagster  # noqa: F401 - part of the baseline, as in a Dagster run worker

    from orders_pipeline.sources.ingest import ingest_day
    from orders_pipeline.sources.mws.source import MwsOrdersSource
    from orders_pipeline.simulator import Faults, SimulatorConfig

    faults = Faults(duplicate_across_pages=duplicates)
    config = SimulatorConfig(orders_per_day=orders_per_day, throttling=False, order_items_page_size=100, faults=faults)
    with remote_simulator(config) as simulator, client_for(simulator) as client, tempfile.TemporaryDirectory() as root:
        baseline = _status_mb("VmRSS")
        report = ingest_day(MwsOrdersSource(client), DAY, Path(root))
    print(json.dumps({"baseline": baseline, "peak": _status_mb("VmHWM"), "orders": report.orders.fetched,
                      "items": report.order_items.fetched, "dropped": report.orders.duplicates_dropped, "seconds": report.seconds}))


def measure(orders_per_day: int, duplicates: bool) -> dict:
    """Run one size in a fresh interpreter and return its figures."""
    command = [sys.executable, __file__, "--child", str(orders_per_day), *(["--duplicates"] if duplicates else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Measure each size in its own process and print peak RSS above the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 orders")
    parser.add_argument("--sizes", help="comma-separated orders per day (default 10000,100000)")
    parser.add_argument("--duplicates", action="store_true", help="the server repeats older versions across pages")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.duplicates)
        return
    sizes = [int(part) for part in (args.sizes or ("2000,20000" if args.quick else "10000,100000")).split(",")]
    say(f"machine: {machine()}")
    above = []
    for size in sizes:
        figures = measure(size, args.duplicates)
        above.append(figures["peak"] - figures["baseline"])
        say(
            f"{size:>7,} orders/day → {figures['orders']:,} orders, {figures['items']:,} items "
            f"({figures['dropped']:,} repeated order versions dropped) in {figures['seconds']:,.1f} s: "
            f"baseline {figures['baseline']:,.0f} MB, peak {figures['peak']:,.0f} MB, {above[-1]:,.0f} MB above baseline"
        )
    say(f"target: < {TARGET_MB} MB above baseline; largest vs smallest: {max(above) / min(above):.2f}x (target within 1.10x)")


if __name__ == "__main__":
    main()
