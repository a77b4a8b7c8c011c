"""SP-API: a day of N orders through searchOrders at the real usage plans, and a backfill through one report.

The simulator runs Amazon's SP-API usage plans on a real clock (`--time-scale 1`, the default: searchOrders
burst 20, then one call per 180 s). The client starts from the same documented plans. It prints the wall time
of one day's searchOrders, the pages and calls made, and the 429s received. The bound is 180 s·(pages − 20)
/ time_scale past the burst (MWS needs max(60 s·(pages − 6), 2 s·(N − 30)): 32 min for 1,000 orders).
With `--report-days D` it also backfills D days of N orders a day through one Reports call sequence and
prints the report's wall time and the TSV parse + mapping rate in rows per second.

    python benchmarks/bench_sp_api.py                           # 1,000 orders, real rate limits
    python benchmarks/bench_sp_api.py --orders 10000 --time-scale 60
    python benchmarks/bench_sp_api.py --report-days 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _harness import DAY, machine, say
from orders_pipeline.simulator import DEMO_MARKETPLACE_IDS, DEMO_SP_API_CREDENTIALS, MwsSimulator, SimulatorConfig
from orders_pipeline.sources.ingest import ingest_days
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.lwa import LwaCredentials, LwaTokenClient
from orders_pipeline.sources.sp_api.report_tsv import read_report
from orders_pipeline.sources.sp_api.report_source import SpApiReportsSource
from orders_pipeline.sources.sp_api.reports import SpApiReportsClient
from orders_pipeline.sources.sp_api.throttle import new_throttle

START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
NOW = START + timedelta(days=7)


def client_for(simulator: MwsSimulator, time_scale: float) -> SpApiOrdersClient:
    """The SP-API client for the simulator with the demo app, paced on the usage plans at `time_scale`."""
    demo = DEMO_SP_API_CREDENTIALS
    tokens = LwaTokenClient(LwaCredentials(demo.app_id, demo.client_secret, demo.refresh_token), f"{simulator.url}/auth/o2/token")
    return SpApiOrdersClient(simulator.url, tokens, DEMO_MARKETPLACE_IDS, throttle=new_throttle(time_scale=time_scale),
                             now=lambda: NOW)


def search_day(orders_per_day: int, time_scale: float) -> None:
    """One day through searchOrders: wall time, pages, calls and 429s against the bound."""
    config = SimulatorConfig(orders_per_day=orders_per_day, time_scale=time_scale, clock=lambda: NOW)
    with MwsSimulator(config) as simulator, client_for(simulator, time_scale) as client:
        started = time.perf_counter()
        pages = list(client.search_orders(START, START + timedelta(days=1)))
        wall = time.perf_counter() - started
        throttled = simulator.stats.throttled
    orders = sum(page.orders.num_rows for page in pages)
    items = sum(page.items.num_rows for page in pages)
    bound = max(0, len(pages) - 20) * 180.0 / time_scale
    stats = client.stats.as_metadata()
    say(f"searchOrders: {orders:,} orders, {items:,} items in {len(pages)} pages, {stats['calls_total']} calls "
        f"(LWA tokens: {stats['token_refreshes']}) in {wall:.2f} s wall; bound past the burst {bound:.1f} s"
        f"{f' ({wall / bound:.3f}x)' if bound else ''}; {throttled} throttled (429)")


def report_backfill(orders_per_day: int, days: int, time_scale: float) -> None:
    """`days` days through one report: its wall time and the parse + mapping rate of its document."""
    config = SimulatorConfig(orders_per_day=orders_per_day, time_scale=time_scale, clock=lambda: NOW)
    end = START + timedelta(days=1)
    with MwsSimulator(config) as simulator, client_for(simulator, time_scale) as client:
        reports = SpApiReportsClient(client, poll_seconds=1.0)
        started = time.perf_counter()
        report_id = reports.create_report(end - timedelta(days=days), end)
        document_id, waited = reports.wait_for_report(report_id)
        tsv = reports.download_document(document_id)
        fetched = time.perf_counter() - started
        parse_started = time.perf_counter()
        tables = read_report(tsv, client.marketplace_ids)
        parse = time.perf_counter() - parse_started
        write = write_days(client, reports, end - timedelta(days=days), days)
    rows = tables.items.num_rows
    say(f"report over {days} days: {tables.orders.num_rows:,} orders, {rows:,} item rows, {len(tsv) / 1e6:.1f} MB TSV; "
        f"created, processed ({waited:.1f} s polling) and downloaded in {fetched:.2f} s; parse + map {parse:.2f} s = "
        f"{rows / parse:,.0f} rows/s")
    total_rows = tables.orders.num_rows + rows
    say(f"the same {days} days written by ingest_days (split by day, merged into {2 * days} partitions): write "
        f"{write:.2f} s; parse + map + write {total_rows:,} rows (orders and items) in {parse + write:.2f} s = "
        f"{total_rows / (parse + write):,.0f} rows/s")


def write_days(client: SpApiOrdersClient, reports: SpApiReportsClient, start: datetime, days: int) -> float:
    """Seconds `ingest_days` spends outside the report source (splitting, writing, merging) for `days` days."""
    source = SpApiReportsSource(client, reports)
    inside = 0.0

    class Timed:
        """The report source, timing the seconds spent inside its fetch (creating, waiting, reading the report)."""

        name, method = source.name, source.method
        now, coverage = source.now, source.coverage

        def fetch(self, *args):
            nonlocal inside
            batches = source.fetch(*args)
            while True:
                started = time.perf_counter()
                batch = next(batches, None)
                inside += time.perf_counter() - started
                if batch is None:
                    return
                yield batch

    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        ingest_days(Timed(), [(start + timedelta(days=n)).date() for n in range(days)], Path(root))
        return time.perf_counter() - started - inside


def main() -> None:
    """Run the searchOrders day and, when asked, the report backfill."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="orders per day (default 1,000)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="usage-plan clock speed-up (default 1: real)")
    parser.add_argument("--report-days", type=int, default=0, help="also backfill this many days through one report")
    args = parser.parse_args()
    say(f"machine: {machine()}")
    say(f"usage plans x{args.time_scale:g}; {args.orders:,} orders/day")
    search_day(args.orders, args.time_scale)
    if args.report_days:
        report_backfill(args.orders, args.report_days, args.time_scale)


if __name__ == "__main__":
    main()
