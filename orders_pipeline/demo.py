"""The demo: a few days through Dagster from the embedded simulator, then a short printed tour of the output."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from orders_pipeline.assets.raw import ORDER_ITEMS, ORDERS, mws_orders
from orders_pipeline.resources import mws_resource_from_environment
from orders_pipeline.storage import data_dir


def run_demo(days: list[date], dagster_home: Path) -> bool:
    """Ingest `days` one run per partition into the instance at `dagster_home`; True if every run succeeded."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    resources = {"mws": mws_resource_from_environment()}
    print(f"Ingesting {len(days)} days into {data_dir()} (Dagster instance: {dagster_home})")
    ok = True
    for day in days:
        result = dg.materialize([mws_orders], partition_key=day.isoformat(), instance=instance, resources=resources, raise_on_error=False)
        ok = ok and result.success
        print(_day_line(day, result))
    if ok:
        _print_next_steps(dagster_home)
    return ok


def _day_line(day: date, result: dg.ExecuteInProcessResult) -> str:
    if not result.success:
        failure = next((event for event in result.all_events if event.is_step_failure), None)
        reason = failure.step_failure_data.error.message.strip() if failure and failure.step_failure_data.error else "see the run's logs"
        return f"  {day}  FAILED: {reason}"
    metadata = {
        key: {name: value.value for name, value in materialization.metadata.items()}
        for key in (ORDERS, ORDER_ITEMS)
        for materialization in result.asset_materializations_for_node("mws_orders")
        if materialization.asset_key == key
    }
    orders, items = metadata[ORDERS], metadata[ORDER_ITEMS]
    state = "complete" if orders["complete"] else "partial (day still running)"
    return (
        f"  {day}  {orders['dagster/row_count']:>5,} orders  {items['dagster/row_count']:>5,} items  "
        f"{orders.get('api_calls_total', 0):>5,} API calls  {orders['seconds']:>6.1f} s  {state}"
    )


def _print_next_steps(dagster_home: Path) -> None:
    print(
        "\nNext:\n"
        f"  Dagster UI:  DAGSTER_HOME={dagster_home} dagster dev -h 127.0.0.1 -p 3000   (then open http://127.0.0.1:3000)\n"
        f"  Query:       python -c \"import duckdb; print(duckdb.sql(\\\"from read_parquet('{data_dir()}/orders/*/*.parquet', hive_partitioning=true) limit 5\\\"))\""
    )
