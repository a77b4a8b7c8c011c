"""In-process Dagster runs for the command line: one run per partition, then the marts; one printed line per run."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date

import dagster as dg

from orders_pipeline.defs.assets.raw import ORDER_ITEMS, ORDERS, mws_orders
from orders_pipeline.definitions import defs
from orders_pipeline.defs.jobs import analytics_job, ingest_job
from orders_pipeline.defs.partitions import ACCOUNT_DIMENSION, DAY_DIMENSION

Progress = Callable[[str], None]
INGEST_OP = mws_orders.op.name
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""The runs' own logs stay in the instance (and the UI); the terminal gets warnings and one line per run."""


def ingest_days(
    days: Sequence[date], instance: dg.DagsterInstance, *, replace: bool = False, progress: Progress = print,
    accounts: Sequence[str] = (), whole_range: Collection[str | None] = (),
) -> list[str]:
    """Materialize `days` as a UI backfill would, one run per partition, oldest first (with `accounts`, each account's
    days in turn); an account in `whole_range` (None: the one account without a file) takes all its days in one run,
    as `--partition-range` does: on SP-API one Reports request per 30 days instead of a searchOrders sweep per day.
    Return the runs that failed (`2024-03-03`, `eu-brand 2024-03-03`, `eu-brand 2024-03-01...2024-03-31`).

    Each run merges into its days; `replace` rebuilds each day from its fetch alone.
    """
    job = defs.resolve_job_def(ingest_job.name)
    run_config = {**QUIET, "ops": {INGEST_OP: {"config": {"replace": replace}}}}
    runs: list[tuple[str | None, list[date]]] = []
    for account in list(accounts) or [None]:
        if account in whole_range and len(days) > 1:
            runs.append((account, list(days)))
        else:
            runs.extend((account, [day]) for day in days)
    failed = []
    for number, (account, span) in enumerate(runs, start=1):
        first, last = _partition_key(account, span[0]), _partition_key(account, span[-1])
        partition = {"partition_key": first} if len(span) == 1 else {"tags": {RANGE_START_TAG: first, RANGE_END_TAG: last}}
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False, **partition)
        label = f"{account + ' ' if account else ''}{span[0]}{'' if len(span) == 1 else f'...{span[-1]}'}"
        if not result.success:
            failed.append(label)
        progress(f"[{number:>{len(str(len(runs)))}}/{len(runs)}] {_day_line(label, result)}")
    return failed


def _partition_key(account: str | None, day: date) -> str:
    """A raw partition key: the day, or with accounts the (account, day) key of the grid."""
    if account is None:
        return day.isoformat()
    return str(dg.MultiPartitionKey({ACCOUNT_DIMENSION: account, DAY_DIMENSION: day.isoformat()}))


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
