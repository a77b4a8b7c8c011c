"""Shared pieces of the benchmark scripts: a client for a running simulator, captured bodies, machine facts."""

from __future__ import annotations

import multiprocessing
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone

import requests

from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.sources.mws.settings import MwsCredentials
from orders_pipeline.sources.mws.quotas import MwsThrottle
from orders_pipeline.simulator import DEMO_CREDENTIALS, DEMO_MARKETPLACE_IDS, MwsSimulator, SimulatorConfig

DAY = date(2024, 3, 3)
"""A past day, so every window is complete and the simulator's data for it is fixed."""


class RecordingSession(requests.Session):
    """A requests.Session that keeps every 200 response body it receives, keyed by the Action sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: dict[str, list[bytes]] = {}

    def post(self, url, data=None, **kwargs) -> requests.Response:  # type: ignore[override]
        """POST as usual and remember the body of a successful answer."""
        response = super().post(url, data=data, **kwargs)
        if response.status_code == 200:
            action = dict(pair.split("=", 1) for pair in data.split("&"))["Action"]
            self.bodies.setdefault(action, []).append(response.content)
        return response


@dataclass(frozen=True)
class RemoteSimulator:
    """A simulator serving from another process, as the real API does: only its URL is shared."""

    url: str


@contextmanager
def remote_simulator(config: SimulatorConfig) -> Iterator[RemoteSimulator]:
    """Serve `config` from a spawned process (so its memory and CPU are not the pipeline's) until the block ends."""
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve_until, args=(config, urls, stop), daemon=True)
    process.start()
    try:
        yield RemoteSimulator(urls.get(timeout=120))
    finally:
        stop.set()
        process.join(timeout=10)


def _serve_until(config: SimulatorConfig, urls, stop) -> None:
    with MwsSimulator(config) as simulator:
        urls.put(simulator.url)
        stop.wait()


def client_for(
    simulator: MwsSimulator | RemoteSimulator,
    *,
    session: requests.Session | None = None,
    throttle: MwsThrottle | None = None,
) -> MwsOrdersClient:
    """The pipeline's client pointed at `simulator` with the demo seller's credentials."""
    credentials = MwsCredentials(DEMO_CREDENTIALS.access_key_id, DEMO_CREDENTIALS.secret_key, DEMO_CREDENTIALS.seller_id)
    return MwsOrdersClient(simulator.url, credentials, DEMO_MARKETPLACE_IDS, session=session, throttle=throttle)


def machine() -> str:
    """One line naming the machine and the versions that matter for the figures."""
    import lxml.etree
    import pyarrow

    return (
        f"{_cpu_model()}, {_cores()} cores; Python {platform.python_version()}, pyarrow {pyarrow.__version__}, "
        f"lxml {'.'.join(map(str, lxml.etree.LXML_VERSION[:3]))} (libxml2 "
        f"{'.'.join(map(str, lxml.etree.LIBXML_VERSION))}); {datetime.now(timezone.utc):%Y-%m-%d}"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def say(line: str = "") -> None:
    """Print a line at once (benchmarks run long; output should not wait for the buffer)."""
    print(line, flush=True)


class CpuMeter:
    """The whole machine's CPU use (every process, from /proc/stat) sampled every `period` s while a block runs."""

    def __init__(self, period: float = 0.5) -> None:
        self.period = period
        self.busy: list[float] = []  # fraction of all cores busy in each period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="cpu-meter", daemon=True)

    def __enter__(self) -> CpuMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> str:
        """Mean busy share, the busiest second and the time spent at 90% or more of all cores."""
        if not self.busy:
            return "no CPU samples (no /proc/stat)"
        per_second = max(1, round(1 / self.period))
        peak = max(sum(self.busy[i:i + per_second]) / len(self.busy[i:i + per_second]) for i in range(len(self.busy)))
        saturated = sum(self.period for share in self.busy if share >= 0.9)
        return (f"machine CPU busy {sum(self.busy) / len(self.busy):.0%} on average, {peak:.0%} in the busiest second, "
                f"{saturated:.1f} s at ≥ 90% of all cores")

    def _sample(self) -> None:
        previous = _cpu_times()
        while previous is not None and not self._stop.wait(self.period):
            current = _cpu_times()
            busy, total = current[0] - previous[0], current[1] - previous[1]
            if total > 0:
                self.busy.append(busy / total)
            previous = current


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)
