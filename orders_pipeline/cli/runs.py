"""In-process Dagster runs for the command line: one run per partition, then the marts; one printed line per run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import dagster as dg

from orders_pipeline.defs.assets.raw import ORDER_ITEMS, ORDERS, mws_orders
from orders_pipeline.definitions import defs
from orders_pipeline.defs.jobs import analytics_job, ingest_job
from orders_pipeline.defs.partitions import ACCOUNT_DIMENSION, DAY_DIMENSION

Progress = Callable[[str], None]
INGEST_OP = mws_orders.op.name
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""The runs' own logs stay in the instance (and the UI); the terminal gets warnings and one line per run."""


def ingest_days(
    days: Sequence[date], instance: dg.DagsterInstance, *, replace: bool = False, progress: Progress = print,
    accounts: Sequence[str] = (),
) -> list[str]:
    """Materialize `days` one run per partition, oldest first, as a UI backfill would (with `accounts`, each
    account's days in turn); return the partitions that failed (`2024-03-03`, or `eu-brand 2024-03-03`).

    Each run merges into its day; `replace` rebuilds each day from its fetch alone.
    """
    job = defs.resolve_job_def(ingest_job.name)
    run_config = {**QUIET, "ops": {INGEST_OP: {"config": {"replace": replace}}}}
    partitions = [(account, day) for account in accounts for day in days] if accounts else [(None, day) for day in days]
    failed = []
    for number, (account, day) in enumerate(partitions, start=1):
        key = dg.MultiPartitionKey({ACCOUNT_DIMENSION: account, DAY_DIMENSION: day.isoformat()}) if account else day.isoformat()
        result = job.execute_in_process(partition_key=key, instance=instance, run_config=run_config, raise_on_error=False)
        label = f"{account} {day}" if account else str(day)
        if not result.success:
            failed.append(label)
        progress(f"[{number:>{len(str(len(partitions)))}}/{len(partitions)}] {_day_line(label, result)}")
    return failed


def refresh_marts(instance: dg.DagsterInstance, progress: Progress = print) -> bool:
    """Rebuild every SQL model, the warehouse and the charts from what has landed; True on success."""
    job = defs.resolve_job_def(analytics_job.name)
    result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    built = [event.asset_key.to_user_string() for event in result.get_asset_materialization_events()]
    progress(f"marts: built {len(built)} assets" if result.success else f"marts: FAILED: {_failure(result)}")
    return result.success


def _day_line(day: str, result: dg.ExecuteInProcessResult) -> str:
    if not result.success:
        return f"{day}  FAILED: {_failure(result)}"
    metadata = {
        materialization.asset_key: {name: value.value for name, value in materialization.metadata.items()}
        for materialization in result.asset_materializations_for_node(INGEST_OP)
    }
    orders, items = metadata[ORDERS], metadata[ORDER_ITEMS]
    state = "complete" if orders["complete"] else "partial (day still running)"
    return (
        f"{day}  {orders['fetched']:>5,} orders  {items['fetched']:>5,} items  "
        f"{orders.get('api_calls_total', 0):>5,} API calls  {orders['seconds']:>6.1f} s  {state}  "
        f"{orders['new_versions']:,} new versions, {orders['dagster/row_count']:,} stored"
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failure = next((event for event in result.all_events if event.is_step_failure), None)
    if failure and failure.step_failure_data.error:
        return failure.step_failure_data.error.message.strip()
    return "see the run's logs"
