"""Many seller accounts side by side: N accounts, one day each, in parallel, against one account alone.

Each account has its own simulator (its own seed, so its own orders, and its own API budget), its own client and
throttle, and its own `account=NAME` partitions of one data dir; half the accounts use MWS, half SP-API. Every day goes through `ingest_day`, the
code the raw asset runs, with the client opened as the resources open it for the embedded simulator (the quota
clock `--time-scale` times faster, the client's throttle told so for SP-API and learning it from the headers for
MWS). Each simulator serves from a process of its own (`--simulator-processes 1`: all behind one interpreter lock), as
the remote API does from its own machines, so the pipeline's CPU is measured apart from the API's.

It runs all accounts at once, with one process per account (as Dagster runs one worker process per run) and/or
with threads in this process, then, as the baseline (same settings, same process), the account of each source whose
calls need the most API time, alone. It prints per account the wall, the API's own bound for the calls it made
(what the quotas allow past the burst) and their ratio, calls, throttled answers (server and client), rows,
Parquet bytes and CPU; then the parallel wall against the longest account alone (target 1.3x), per-source means
per account-day, and the whole machine's CPU use (other work on the machine included).

    python benchmarks/bench_accounts.py                           # 20 accounts, processes then threads (~5 min)
    python benchmarks/bench_accounts.py --modes processes --time-scale 60
    python benchmarks/bench_accounts.py --quick                   # 4 accounts, short days
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from _harness import DAY, CpuMeter, machine, say
from orders_pipeline.simulator import (
    DEMO_CREDENTIALS,
    DEMO_MARKETPLACE_IDS,
    DEMO_SP_API_CREDENTIALS,
    MwsSimulator,
    SimulatorConfig,
)
from orders_pipeline.sources.ingest import ingest_day
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.source import MwsOrdersSource
from orders_pipeline.sources.seam import OrdersSource
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.lwa import LwaCredentials, LwaTokenClient
from orders_pipeline.sources.sp_api.source import SpApiOrdersSource
from orders_pipeline.sources.sp_api.throttle import new_throttle
from orders_pipeline.storage.layout import partition_dir

TARGET_RATIO = 1.3
SOURCES = ("mws", "sp-api")


@dataclass(frozen=True)
class Settings:
    """What every account's day looks like: the quota clock and the orders per simulated day of each source."""

    time_scale: float = 60.0
    mws_orders: int = 1_000
    sp_api_orders: int = 3_700

    def simulator(self, account: Account) -> SimulatorConfig:
        """The account's own simulator: its seed, its orders per day, one ListOrderItems call per order."""
        orders = self.mws_orders if account.source == "mws" else self.sp_api_orders
        return SimulatorConfig(seed=account.seed, orders_per_day=orders, time_scale=self.time_scale,
                               order_items_page_size=100)


@dataclass(frozen=True)
class Account:
    """One simulated seller account."""

    name: str
    source: str
    seed: int


@dataclass(frozen=True)
class AccountDay:
    """What one account's day cost and produced."""

    name: str
    source: str
    began: float  # time.monotonic(), comparable across the processes of this machine
    ended: float
    cpu_seconds: float
    orders: int
    items: int
    order_pages: int
    item_pages: int
    calls: int  # as the client counts them (LWA token calls are not among them)
    client_throttled: int
    parquet_bytes: int
    server_requests: int = 0
    server_throttled: int = 0
    peak_rss_mb: float = 0.0  # the worker process's peak (processes mode only)

    @property
    def wall(self) -> float:
        """Seconds from the account's start to its day committed."""
        return self.ended - self.began

    def bound(self, time_scale: float) -> float:
        """The API's own floor for the calls made: what the quotas allow past the burst, on the fast clock."""
        if self.source == "mws":
            return max(60.0 * (self.order_pages - 6), 2.0 * (self.item_pages - 30), 0.0) / time_scale
        return max(180.0 * (self.order_pages - 20), 0.0) / time_scale


@dataclass(frozen=True)
class Run:
    """One run of some accounts at once."""

    days: list[AccountDay]
    wall: float
    pipeline_cpu: float  # every process or thread that ingested
    simulator_cpu: float  # the processes serving the simulators
    machine: str  # the whole machine's CPU use meanwhile (other work included)


def accounts(count: int) -> list[Account]:
    """`count` accounts, sources alternating (mws, sp-api, ...), each with its own seed."""
    return [Account(f"seller-{n:02d}", SOURCES[(n - 1) % 2], 100 + n) for n in range(1, count + 1)]


@contextmanager
def open_source(account: Account, url: str, time_scale: float) -> Iterator[OrdersSource]:
    """The account's source as the resources open it for the embedded simulator (demo credentials)."""
    if account.source == "mws":
        demo = DEMO_CREDENTIALS
        credentials = MwsCredentials(demo.access_key_id, demo.secret_key, demo.seller_id)
        with MwsOrdersClient(url, credentials, DEMO_MARKETPLACE_IDS) as client:
            yield MwsOrdersSource(client)
        return
    demo_app = DEMO_SP_API_CREDENTIALS
    tokens = LwaTokenClient(LwaCredentials(demo_app.app_id, demo_app.client_secret, demo_app.refresh_token),
                            f"{url}/auth/o2/token")
    with SpApiOrdersClient(url, tokens, DEMO_MARKETPLACE_IDS, throttle=new_throttle(time_scale=time_scale)) as client:
        yield SpApiOrdersSource(client)


def ingest_account(account: Account, url: str, time_scale: float, root: Path) -> AccountDay:
    """One account's day into its `account=NAME` partitions of the shared data dir, timed; CPU is this thread's (this
    process's when it is alone)."""
    cpu_clock = time.thread_time if threading.current_thread() is not threading.main_thread() else time.process_time
    began, cpu = time.monotonic(), cpu_clock()
    with open_source(account, url, time_scale) as source:
        report = ingest_day(source, DAY, root, account=account.name)
    ended, cpu = time.monotonic(), cpu_clock() - cpu
    folders = [partition_dir(root, table, DAY, account.name) for table in ("orders", "order_items")]
    return AccountDay(
        account.name, account.source, began, ended, cpu, report.orders.fetched, report.order_items.fetched,
        report.order_pages, report.item_pages, int(report.api.get("calls_total", 0)),
        int(report.api.get("throttled_responses", 0)),
        sum(path.stat().st_size for folder in folders for path in folder.glob("*.parquet")),
    )


class SimulatorHost:
    """One simulator per account, served from `processes` spawned processes until the block ends; then their counters.

    Amazon serves each seller from its own fleet, not from the pipeline's CPU or one interpreter lock: by default
    each account's simulator gets a process of its own (`processes=1` puts them all behind one lock, for comparison).
    """

    def __init__(self, chosen: list[Account], settings: Settings, processes: int | None = None) -> None:
        configs = {account.name: settings.simulator(account) for account in chosen}
        names = list(configs)
        count = max(1, min(processes or len(names), len(names)))
        context = multiprocessing.get_context("spawn")
        self._urls, self._results, self._stop = context.Queue(), context.Queue(), context.Event()
        self._processes = [
            context.Process(target=_serve, args=({name: configs[name] for name in names[n::count]}, self._urls,
                                                 self._results, self._stop), daemon=True)
            for n in range(count)
        ]
        self.urls: dict[str, str] = {}
        self.counters: dict[str, tuple[int, int]] = {}  # account -> (requests, throttled answers)
        self.cpu_seconds = 0.0

    def __enter__(self) -> SimulatorHost:
        for process in self._processes:
            process.start()
        for _ in self._processes:
            self.urls.update(self._urls.get(timeout=120))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        try:
            for _ in self._processes:
                counters, cpu_seconds = self._results.get(timeout=60)
                self.counters.update(counters)
                self.cpu_seconds += cpu_seconds
        finally:
            for process in self._processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.terminate()


def _serve(configs: dict[str, SimulatorConfig], urls, results, stop) -> None:
    """The simulator process: start every account's simulator, wait, report each one's counters and the CPU used."""
    simulators = {name: MwsSimulator(config) for name, config in configs.items()}
    try:
        urls.put({name: simulator.start() for name, simulator in simulators.items()})
        cpu = time.process_time()
        stop.wait()
        counters = {name: (sim.stats.total_requests, sim.stats.throttled) for name, sim in simulators.items()}
        results.put((counters, time.process_time() - cpu))
    finally:
        for simulator in simulators.values():
            simulator.stop()


def run_accounts(
    chosen: list[Account], settings: Settings, mode: str, root: Path, simulator_processes: int | None = None
) -> Run:
    """Every chosen account's day at once (one process each, or threads in this process), with its simulator."""
    with SimulatorHost(chosen, settings, simulator_processes) as host, CpuMeter() as meter:
        if mode == "threads":
            days, cpu = _in_threads(chosen, host.urls, settings.time_scale, root)
        else:
            days, cpu = _in_processes(chosen, host.urls, settings.time_scale, root)
    days = [replace(day, server_requests=host.counters[day.name][0], server_throttled=host.counters[day.name][1])
            for day in days]
    wall = max(day.ended for day in days) - min(day.began for day in days)
    return Run(days, wall, cpu, host.cpu_seconds, meter.summary())


def _in_threads(chosen: list[Account], urls: dict[str, str], time_scale: float, root: Path) -> tuple[list[AccountDay], float]:
    cpu = time.process_time()
    if len(chosen) == 1:
        days = [ingest_account(chosen[0], urls[chosen[0].name], time_scale, root)]
    else:
        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            days = list(pool.map(lambda account: ingest_account(account, urls[account.name], time_scale, root), chosen))
    return days, time.process_time() - cpu


def _in_processes(chosen: list[Account], urls: dict[str, str], time_scale: float, root: Path) -> tuple[list[AccountDay], float]:
    """One spawned process per account, all imported and waiting before any starts (as run workers would be)."""
    context = multiprocessing.get_context("spawn")
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_account_process, args=(account, urls[account.name], time_scale, root, ready, results, start),
                        daemon=True)
        for account in chosen
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=300)
        start.set()
        outcomes = [results.get(timeout=3600) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    failures = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if failures:
        raise RuntimeError(f"{len(failures)} account(s) failed: {failures[0]}")
    return outcomes, sum(day.cpu_seconds for day in outcomes)


def _account_process(account: Account, url: str, time_scale: float, root: Path, ready, results, start) -> None:
    ready.put(account.name)
    start.wait()
    try:
        day = ingest_account(account, url, time_scale, root)
        results.put(replace(day, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    except Exception as exc:  # the parent reports it; a silent child would leave it waiting
        results.put(f"{account.name}: {type(exc).__name__}: {exc}")


def print_run(label: str, run: Run, settings: Settings) -> None:
    """One line per account, then the run's totals."""
    say(f"{label}: {len(run.days)} account(s), wall {run.wall:.2f} s; pipeline CPU {run.pipeline_cpu:.2f} s, "
        f"simulators' CPU {run.simulator_cpu:.2f} s; {run.machine}")
    say(f"  {'account':<10} {'source':<6} {'wall s':>7} {'bound s':>7} {'ratio':>6} {'orders':>6} {'items':>6} "
        f"{'calls':>6} {'server requests':>15} {'throttled srv/cli':>17} {'Parquet B':>10} {'CPU s':>6}")
    for day in sorted(run.days, key=lambda day: day.name):
        bound = day.bound(settings.time_scale)
        say(f"  {day.name:<10} {day.source:<6} {day.wall:7.2f} {bound:7.2f} "
            f"{(day.wall / bound if bound else float('nan')):6.3f} {day.orders:6,} {day.items:6,} {day.calls:6,} "
            f"{day.server_requests:15,} {f'{day.server_throttled}/{day.client_throttled}':>17} "
            f"{day.parquet_bytes:10,} {day.cpu_seconds:6.2f}")


def main() -> None:
    """Run one account of each source alone, then all accounts at once in each mode, and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20, help="accounts run at once (default 20)")
    parser.add_argument("--time-scale", type=float, default=Settings.time_scale, help="quota clock speed-up")
    parser.add_argument("--mws-orders", type=int, default=Settings.mws_orders, help="orders per day, MWS accounts")
    parser.add_argument("--sp-api-orders", type=int, default=Settings.sp_api_orders, help="orders per day, SP-API accounts")
    parser.add_argument("--modes", default="processes,threads", help="processes, threads or both")
    parser.add_argument("--simulator-processes", type=int, help="processes serving the simulators (default: one each)")
    parser.add_argument("--quick", action="store_true", help="4 accounts, 300 MWS / 2,500 SP-API orders a day")
    args = parser.parse_args()
    settings = Settings(args.time_scale, args.mws_orders, args.sp_api_orders)
    count = args.accounts
    if args.quick:
        settings, count = replace(settings, mws_orders=300, sp_api_orders=2_500), 4
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or set(modes) - {"threads", "processes"}:
        parser.error("--modes takes processes, threads or both")
    chosen = accounts(count)
    with CpuMeter() as before:
        time.sleep(5)
    say(f"machine: {machine()}; load average {_load()} at the start; {before.summary()} in the 5 s before")
    say(f"{count} accounts ({', '.join(f'{sum(a.source == s for a in chosen)} {s}' for s in SOURCES)}), day {DAY}, "
        f"quota clock x{settings.time_scale:g}; {settings.mws_orders:,} MWS / {settings.sp_api_orders:,} SP-API "
        f"orders per simulated day; one simulator per account, in {args.simulator_processes or count} process(es)")
    with tempfile.TemporaryDirectory(prefix="bench_accounts_") as temp:
        runs = {}
        for mode in modes:
            runs[mode] = run_accounts(chosen, settings, mode, Path(temp) / mode, args.simulator_processes)
            print_run(f"all at once, {mode}", runs[mode], settings)
        solos = []
        for longest in longest_per_source(chosen, runs[modes[0]], settings):
            solo = run_accounts([longest], settings, "threads", Path(temp) / f"solo-{longest.name}")
            print_run(f"baseline, the longest {longest.source} account alone", solo, settings)
            solos.append(solo)
    solo_wall = max(solo.wall for solo in solos)
    for mode, run in runs.items():
        say(f"{mode}:")
        _summary(run, solo_wall, settings)
    say(f"load average {_load()} at the end")


def longest_per_source(chosen: list[Account], run: Run, settings: Settings) -> list[Account]:
    """For each source, the account whose calls need the most API time: the baseline a parallel run is held to."""
    by_name = {account.name: account for account in chosen}
    longest = {day.source: day for day in sorted(run.days, key=lambda day: day.bound(settings.time_scale))}
    return [by_name[day.name] for day in longest.values()]


def _summary(run: Run, solo_wall: float, settings: Settings) -> None:
    ratio = run.wall / solo_wall
    slowest = max(run.days, key=lambda day: day.wall / max(day.bound(settings.time_scale), 1e-9))
    cpu = run.pipeline_cpu + run.simulator_cpu
    say(f"  parallel wall {run.wall:.2f} s vs the longest account alone {solo_wall:.2f} s: {ratio:.3f}x "
        f"(target ≤ {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'}); the slowest account against "
        f"its own bound: {slowest.name} {slowest.wall / max(slowest.bound(settings.time_scale), 1e-9):.3f}x")
    say(f"  throttled answers (server count / client count), all accounts: "
        f"{sum(day.server_throttled for day in run.days)} / {sum(day.client_throttled for day in run.days)} (target 0); "
        f"CPU {cpu:.1f} s (pipeline {run.pipeline_cpu:.1f}, simulators {run.simulator_cpu:.1f}) of "
        f"{run.wall * _cores():.1f} core-seconds = {cpu / (run.wall * _cores()):.0%}")
    for source in SOURCES:
        days = [day for day in run.days if day.source == source]
        if days:
            n = len(days)
            say(f"  {source} per account-day (mean of {n}): {sum(d.orders for d in days) / n:,.0f} orders, "
                f"{sum(d.items for d in days) / n:,.0f} items, {sum(d.calls for d in days) / n:,.0f} calls, "
                f"{sum(d.parquet_bytes for d in days) / n / 1e3:,.0f} kB Parquet, pipeline CPU "
                f"{sum(d.cpu_seconds for d in days) / n:.2f} s, wall/bound {sum(d.wall / max(d.bound(settings.time_scale), 1e-9) for d in days) / n:.3f}"
                + (f", worker peak RSS {max(d.peak_rss_mb for d in days):.0f} MB" if days[0].peak_rss_mb else ""))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
