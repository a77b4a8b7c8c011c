"""The `orders-pipeline` command: demo, simulator."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orders-pipeline", description="Amazon MWS orders into Parquet and DuckDB marts.")
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser("demo", help="ingest the last few days from the embedded simulator and build the marts")
    demo.add_argument("--days", type=int, default=3, help="complete days before today to ingest (default 3); today is added as a partial day")
    demo.set_defaults(run=_demo)

    simulator = commands.add_parser("simulator", help="serve the MWS simulator on loopback until Ctrl-C")
    simulator.add_argument("--port", type=int, default=8123, help="port on 127.0.0.1 (default 8123)")
    simulator.add_argument("--time-scale", type=float, default=1.0, help="quota restore speed-up (default 1 = real MWS)")
    simulator.add_argument("--orders-per-day", type=int, default=40, help="average orders per day (default 40)")
    simulator.set_defaults(run=_simulator)
    return parser


def _demo(args: argparse.Namespace) -> int:
    """Materialize the raw partitions one run per day, as a backfill would, then the marts; print a summary."""
    from orders_pipeline.demo import run_demo

    if os.environ.get("MWS_ENDPOINT"):
        print("note: MWS_ENDPOINT is set, so the demo reads from it, not from the embedded simulator", file=sys.stderr)
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=offset) for offset in range(args.days, -1, -1)]
    return EXIT_OK if run_demo(days, _dagster_home()) else EXIT_FAILED


def _dagster_home() -> Path:
    """$DAGSTER_HOME, or ./.dagster_home seeded with the repo's dagster.yaml so the UI later shows the demo's runs."""
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else Path(".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    instance_config = Path("dagster.yaml")
    if not (home / "dagster.yaml").exists() and instance_config.exists():
        shutil.copy(instance_config, home / "dagster.yaml")
    return home


def _simulator(args: argparse.Namespace) -> int:
    from orders_pipeline.simulator import SimulatorConfig, serve_forever

    serve_forever(SimulatorConfig(time_scale=args.time_scale, orders_per_day=args.orders_per_day), args.port)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
