"""The daily schedule: yesterday's partition, plus a re-sweep of the days before it to catch late changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from orders_pipeline.defs.jobs import ingest_job
from orders_pipeline.defs.partitions import ACCOUNT_DIMENSION, ACCOUNTS, DAY_DIMENSION

RESWEEP_DAYS_ENV = "ORDERS_RESWEEP_DAYS"
DEFAULT_RESWEEP_DAYS = 3


def resweep_days() -> int:
    """How many days before yesterday are fetched again each night ($ORDERS_RESWEEP_DAYS, default 3)."""
    configured = os.environ.get(RESWEEP_DAYS_ENV, str(DEFAULT_RESWEEP_DAYS))
    if not configured.strip().isdigit():
        raise ValueError(f"{RESWEEP_DAYS_ENV}={configured!r}: give a whole number of days, 0 or more (default 3)")
    return int(configured)


@dg.schedule(
    job=ingest_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="00:15 UTC: ingest yesterday and re-sweep the previous days (ORDERS_RESWEEP_DAYS, default 3).",
)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    """One run per partition, yesterday first; the mws_api pool (with accounts, the run queue per account) runs them
    one at a time."""
    yield from daily_run_requests(context.scheduled_execution_time.date(), list(ACCOUNTS))


def daily_run_requests(today: date, accounts: list[str]) -> Iterator[dg.RunRequest]:
    """Yesterday and the re-sweep days, for each account (none: the one account of the variables), keys naming both."""
    yesterday = today - timedelta(days=1)
    for offset in range(resweep_days() + 1):
        day = (yesterday - timedelta(days=offset)).isoformat()
        if not accounts:
            yield dg.RunRequest(run_key=f"{day}@{today}", partition_key=day)
        for account in accounts:
            key = dg.MultiPartitionKey({ACCOUNT_DIMENSION: account, DAY_DIMENSION: day})
            yield dg.RunRequest(run_key=f"{account}/{day}@{today}", partition_key=key)
