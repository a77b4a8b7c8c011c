"""The demo: a few days through Dagster from the embedded simulator, the marts, then where to look next."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from orders_pipeline.runs import ingest_days, refresh_marts
from orders_pipeline.storage import data_dir
from orders_pipeline.summary import mart_summary


def run_demo(days: list[date], dagster_home: Path) -> bool:
    """Ingest `days` one run per partition into the instance at `dagster_home`, then the marts; True if all succeeded."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    print(f"Ingesting {len(days)} days into {data_dir()} (Dagster instance: {dagster_home})")
    ok = not ingest_days(days, instance) and refresh_marts(instance)
    if ok:
        print("\n" + mart_summary(data_dir()))
        _print_next_steps(dagster_home)
    return ok


def _print_next_steps(dagster_home: Path) -> None:
    print(
        "\nNext:\n"
        f"  Dagster UI:  DAGSTER_HOME={dagster_home} dagster dev -h 127.0.0.1 -p 3000   (then open http://127.0.0.1:3000)\n"
        "  Status:      orders-pipeline status\n"
        "  Query:       orders-pipeline query \"from sales_by_channel limit 10\"\n"
        f"  Charts:      {data_dir() / 'reports'}"
    )
