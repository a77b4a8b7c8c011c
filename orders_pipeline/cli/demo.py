"""The demo: a few days through Dagster from the embedded simulator, the marts, then where to look next."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import dagster as dg

from orders_pipeline.cli.runs import ingest_days, refresh_marts
from orders_pipeline.sources.accounts import configured_accounts
from orders_pipeline.storage.layout import data_dir
from orders_pipeline.insights.summary import mart_summary


def run_demo(days: list[date], dagster_home: Path) -> bool:
    """Ingest `days` one run per partition into the instance at `dagster_home`, then the marts; True if all succeeded."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    print(f"Ingesting {len(days)} days into {data_dir()} (Dagster instance: {dagster_home})")
    ok = not ingest_days(days, instance, accounts=list(configured_accounts())) and refresh_marts(instance)
    if ok:
        print("\n" + mart_summary(data_dir()))
        _print_next_steps(dagster_home)
    return ok


def _print_next_steps(dagster_home: Path) -> None:
    tools = _tools_prefix()
    print(
        "\nNext:\n"
        f"  Dagster UI:  DAGSTER_HOME={dagster_home} {tools}dagster dev -h 127.0.0.1 -p 3000   (then open http://127.0.0.1:3000)\n"
        f"  Status:      {tools}orders-pipeline status\n"
        f"  Query:       {tools}duckdb {data_dir() / 'warehouse.duckdb'} -c \"from sales_by_channel limit 10\"\n"
        f"  Charts:      {data_dir() / 'reports'}"
    )


def _tools_prefix() -> str:
    """The folder of this environment's commands when it is not on PATH (a virtualenv that is not activated)."""
    bin_dir = Path(sys.executable).parent
    on_path = any(Path(entry).resolve() == bin_dir.resolve() for entry in os.environ.get("PATH", "").split(os.pathsep) if entry)
    return "" if on_path else f"{bin_dir}/"
