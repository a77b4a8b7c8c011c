"""The `orders-pipeline` command: demo, simulator, backfill, status, order, query."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from orders_pipeline.cli.live_api import endpoint_variable, print_live_order, print_service_status
from orders_pipeline.cli.output import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, aligned_table, plain

EXIT_CODES = """exit codes:
  0  ok
  1  failure (a run failed, the API or the SQL reported an error)
  2  usage error (bad arguments)
  3  not found (no data yet, unknown order, no warehouse)"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) and argparse usage errors (2)
        return int(exit.code or 0)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orders-pipeline",
        description="Amazon MWS orders into Parquet and DuckDB marts.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=help, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    demo = command("demo", "ingest the last few days from the embedded simulator and build the marts")
    demo.add_argument("--days", type=_positive, default=3, help="complete days before today to ingest (default 3); today is added as a partial day")
    demo.set_defaults(run=_demo)

    simulator = command("simulator", "serve the simulator (MWS and SP-API faces) on loopback until Ctrl-C")
    simulator.add_argument("--port", type=int, default=8123, help="port on 127.0.0.1 (default 8123)")
    simulator.add_argument("--time-scale", type=float, default=1.0, help="simulated-time speed-up: quotas, tokens, reports (default 1 = real Amazon)")
    simulator.add_argument("--orders-per-day", type=int, default=40, help="average orders per day (default 40)")
    simulator.set_defaults(run=_simulator)

    backfill = command(
        "backfill",
        "ingest every day from START to END (inclusive, UTC) one run per partition, oldest first, then refresh the marts",
    )
    backfill.add_argument("start", type=_day, metavar="START", help="first day, YYYY-MM-DD")
    backfill.add_argument("end", type=_day, metavar="END", help="last day, YYYY-MM-DD")
    backfill.add_argument("--no-marts", action="store_true", help="only ingest; do not rebuild the marts and charts")
    backfill.add_argument(
        "--replace", action="store_true",
        help="rebuild each day from this fetch alone, dropping the order versions earlier runs stored (default: merge, keep them)",
    )
    backfill.set_defaults(run=_backfill)

    status = command("status", "partitions present (complete or partial), row counts, last run, marts and the API's status")
    status.add_argument("--days", type=int, default=7, help="list the latest N partitions day by day (default 7, 0 for none)")
    status.set_defaults(run=_status)

    order = command("order", "one order's status history across partitions and its items, from the stored data")
    order.add_argument("amazon_order_id", metavar="AMAZON_ORDER_ID")
    order.add_argument("--live", action="store_true", help="also ask the API (GetOrder) for its current state")
    order.set_defaults(run=_order)

    query = command("query", "run SQL against $ORDERS_DATA_DIR/warehouse.duckdb (read-only) and print the result")
    query.add_argument("sql", metavar="SQL", help='e.g. "from sales_by_channel order by purchase_day desc limit 10"')
    query.add_argument("--max-rows", type=int, default=40, help="rows to print as a table (default 40)")
    query.add_argument("--csv", action="store_true", help="print every row as CSV instead of a table")
    query.set_defaults(run=_query)
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days, 1 or more")
    return int(text)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day like 2024-03-01") from None


# ------------------------------------------------------------------------------------------- commands


def _demo(args: argparse.Namespace) -> int:
    """Materialize the raw partitions one run per day, as a backfill would, then the marts; print a summary."""
    from orders_pipeline.cli.demo import run_demo

    if os.environ.get(endpoint_variable()):
        print(f"note: {endpoint_variable()} is set, so the demo reads from it, not from the embedded simulator",
              file=sys.stderr)
    if _would_mix_sources():
        return EXIT_FAILED
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=offset) for offset in range(args.days, -1, -1)]
    return EXIT_OK if run_demo(days, _dagster_home()) else EXIT_FAILED


def _simulator(args: argparse.Namespace) -> int:
    from orders_pipeline.simulator import SimulatorConfig, serve_forever

    serve_forever(SimulatorConfig(time_scale=args.time_scale, orders_per_day=args.orders_per_day), args.port)
    return EXIT_OK


def _backfill(args: argparse.Namespace) -> int:
    """One in-process run per day into the Dagster instance, so the UI shows them; non-zero if any day failed."""
    import dagster as dg

    from orders_pipeline.defs.partitions import FIRST_DAY
    from orders_pipeline.cli.runs import ingest_days, refresh_marts
    from orders_pipeline.storage.layout import data_dir

    today = datetime.now(timezone.utc).date()
    if not date.fromisoformat(FIRST_DAY) <= args.start <= args.end <= today:
        print(f"error: need {FIRST_DAY} <= START <= END <= {today} (today, UTC)", file=sys.stderr)
        return EXIT_USAGE
    if _would_mix_sources():
        return EXIT_FAILED
    days = [args.start + timedelta(days=offset) for offset in range((args.end - args.start).days + 1)]
    home = _dagster_home()
    endpoint = os.environ.get(endpoint_variable()) or f"the embedded simulator ({endpoint_variable()} not set)"
    how = "replacing each day (--replace)" if args.replace else "merging into each day"
    print(f"Backfilling {len(days)} days {args.start}..{args.end} from {endpoint} into {data_dir()}, one run per day, {how}")
    print(f"Runs are recorded in the Dagster instance at {home}", flush=True)
    instance = dg.DagsterInstance.from_config(str(home))
    failed = ingest_days(days, instance, replace=args.replace, progress=_print_flush)
    marts_ok = args.no_marts or refresh_marts(instance, progress=_print_flush)
    if failed:
        print(f"{len(failed)} of {len(days)} days FAILED: {', '.join(map(str, failed))}; re-run them with "
              f"`orders-pipeline backfill DAY DAY`", file=sys.stderr)
    return EXIT_OK if not failed and marts_ok else EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    """Partitions per table from the files and their manifests, last write and run, marts, API status."""
    from orders_pipeline.cli.status import RAW_TABLES, partition_statuses
    from orders_pipeline.storage.layout import mart_path

    root = _pulled_data_dir()
    if root is None:
        return EXIT_FAILED
    print(f"Data directory: {root}")
    statuses = {table: partition_statuses(root, table) for table in RAW_TABLES}
    if not any(statuses.values()):
        print("No partitions yet: run `orders-pipeline demo` or `orders-pipeline backfill START END`.")
        return EXIT_NOT_FOUND
    print(f"\n{'table':<12} {'partitions':>10}  {'first':<10}  {'last':<10}  {'complete':>8} {'partial':>7} {'unknown':>7} {'rows':>12}")
    for table, rows in statuses.items():
        states = [status.state for status in rows]
        first, last = (rows[0].day, rows[-1].day) if rows else ("-", "-")
        print(
            f"{table:<12} {len(rows):>10}  {first!s:<10}  {last!s:<10}  {states.count('complete'):>8} "
            f"{states.count('partial'):>7} {states.count('unknown'):>7} {sum(s.rows for s in rows):>12,}"
        )
    orders = statuses["orders"]
    if args.days > 0 and orders:
        items = {status.day: status.rows for status in statuses["order_items"]}
        print(f"\n{'day':<10}  {'state':<8}  {'orders':>7}  {'items':>7}  covered until / written at")
        for status in orders[-args.days :]:
            print(f"{status.day!s:<10}  {status.state:<8}  {status.rows:>7,}  {items.get(status.day, 0):>7,}  "
                  f"{status.covered_until or '-'} / {status.written_at or '-'}")
    partial = [str(status.day) for status in orders if status.state == "partial"]
    if partial:
        print(f"\nPartial days (re-run to complete): {', '.join(partial)}")
    written = max((s for s in orders if s.written_at), key=lambda s: s.written_at, default=None)
    if written:
        print(f"\nLast write: partition {written.day} at {written.written_at} (Dagster run {written.run_id})")
    _print_last_dagster_run()
    print("\nMarts:")
    for name in ("stuck_orders", "sku_trend_anomalies", "sku_sales_trends", "sales_by_channel"):
        print(f"  {name:<20} {_mart_summary(mart_path(root, name))}")
    return print_service_status()


def _order(args: argparse.Namespace) -> int:
    """The stored versions of one order and the items of its latest version; `--live` adds GetOrder."""
    from orders_pipeline.cli.lookup import HISTORY_COLUMNS, ITEM_COLUMNS, ORDER_COLUMNS, order_items, order_versions
    from orders_pipeline.storage.layout import data_dir

    if _pulled_data_dir() is None:
        return EXIT_FAILED
    versions = order_versions(data_dir(), args.amazon_order_id)
    if not versions:
        print(f"Order {args.amazon_order_id} is not in the stored data under {data_dir()}.", file=sys.stderr)
        if not args.live:
            return EXIT_NOT_FOUND
    else:
        latest = versions[-1]
        print(f"Order {args.amazon_order_id}: {len(versions)} stored versions, now {latest['order_status']}")
        print("\n".join(f"  {name:<26} {plain(latest[name])}" for name in ORDER_COLUMNS))
        print("\nStatus history (one row per version seen, oldest first):")
        print(aligned_table([[plain(v[name]) for name in HISTORY_COLUMNS] for v in versions], HISTORY_COLUMNS))
        items = order_items(data_dir(), args.amazon_order_id, str(latest["dt"]), latest["last_update_date"])
        print(f"\nItems of the latest version (partition dt={latest['dt']}):")
        print(aligned_table([[plain(item[name]) for name in ITEM_COLUMNS] for item in items], ITEM_COLUMNS))
    return print_live_order(args.amazon_order_id) if args.live else EXIT_OK


def _query(args: argparse.Namespace) -> int:
    """SQL against the warehouse file, read-only, printed as a table or CSV."""
    import duckdb

    from orders_pipeline.storage.layout import data_dir
    from orders_pipeline.analytics.warehouse import WAREHOUSE_FILE

    path = data_dir() / WAREHOUSE_FILE
    if not path.exists():
        print(f"No warehouse at {path}: run `orders-pipeline demo`, or materialize group:analytics.", file=sys.stderr)
        return EXIT_NOT_FOUND
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            relation = con.sql(args.sql)
            if relation is None:
                print("ok (statement returned no rows)")
            elif args.csv:
                relation.to_df().to_csv(sys.stdout, index=False)
            else:
                relation.show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as error:
        print(f"query failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# ------------------------------------------------------------------------------------------- helpers


def _dagster_home_path() -> Path:
    """$DAGSTER_HOME, else ./.dagster_home: the instance the CLI's runs go to and `dagster dev` can show."""
    configured = os.environ.get("DAGSTER_HOME")
    return Path(configured) if configured else Path(".dagster_home").absolute()


def _dagster_home() -> Path:
    """The instance folder, created and seeded with ./dagster.yaml (the mws_api pool) when it has none."""
    home = _dagster_home_path()
    home.mkdir(parents=True, exist_ok=True)
    instance_config = Path("dagster.yaml")
    if not (home / "dagster.yaml").exists():
        if instance_config.exists():
            shutil.copy(instance_config, home / "dagster.yaml")
        else:
            print(f"note: no dagster.yaml here, so {home} has no mws_api pool limit; run from the repo root", file=sys.stderr)
    return home


def _print_flush(line: str) -> None:
    print(line, flush=True)


def _print_last_dagster_run() -> None:
    """The newest run in the Dagster instance the CLI and `dagster dev` share, if there is one."""
    home = _dagster_home_path()
    if not (home / "dagster.yaml").exists() and "DAGSTER_HOME" not in os.environ:
        return
    import dagster as dg

    records = dg.DagsterInstance.from_config(str(home)).get_run_records(limit=1)
    if records:
        record = records[0]
        started = datetime.fromtimestamp(record.start_time, timezone.utc).isoformat(timespec="seconds") if record.start_time else "-"
        partition = record.dagster_run.tags.get("dagster/partition", "")
        print(f"Last Dagster run ({home}): {record.dagster_run.job_name} {partition} {record.dagster_run.status.value} "
              f"started {started} (run {record.dagster_run.run_id[:8]})")


def _would_mix_sources() -> bool:
    """Say so, before any run starts, when this environment's source may not write into the data dir (demo vs real data)."""
    from orders_pipeline.storage.source_marker import refusal

    root = _pulled_data_dir(raw=False)
    if root is None:
        return True
    reason = refusal(root, os.environ.get(endpoint_variable()) or None)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
    return reason is not None


def _pulled_data_dir(raw: bool = True) -> Path | None:
    """The data dir; with an s3:// one, this machine's mirror after pulling the store's source marker and, with `raw`,
    its committed days and marts. None, after one line on stderr, when the store cannot be used."""
    from orders_pipeline.storage.layout import data_dir, marts_dir
    from orders_pipeline.storage.object_store import ObjectStoreError, remote_store

    try:
        store = remote_store()
        if store is not None:
            store.pull_source_marker()
            if raw:
                days = store.pull_raw()
                store.pull_files(marts_dir(store.mirror))
                print(f"note: {store.uri}: {len(days)} changed day folder(s) pulled into {store.mirror}", file=sys.stderr)
    except ObjectStoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return data_dir()


def _mart_summary(path: Path) -> str:
    if not path.exists():
        return "not built yet"
    import pyarrow.parquet as pq

    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    return f"{pq.ParquetFile(path).metadata.num_rows:>8,} rows  (built {modified})"


if __name__ == "__main__":
    sys.exit(main())
