"""The daily schedule (yesterday plus a re-sweep) and the one-partition-per-run shape of backfills."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from orders_pipeline.defs.assets.raw import MWS_POOL, mws_orders
from orders_pipeline.definitions import defs
from orders_pipeline.defs.partitions import daily_partitions
from orders_pipeline.defs.schedules import daily_ingest_schedule, resweep_days

TICK = datetime(2024, 3, 10, 0, 15, tzinfo=timezone.utc)


def evaluate(when: datetime = TICK) -> list[dg.RunRequest]:
    return list(daily_ingest_schedule(dg.build_schedule_context(scheduled_execution_time=when)))


def test_the_schedule_asks_for_yesterday_then_the_resweep_days_one_run_each(monkeypatch):
    monkeypatch.delenv("ORDERS_RESWEEP_DAYS", raising=False)
    requests = evaluate()
    assert [r.partition_key for r in requests] == ["2024-03-09", "2024-03-08", "2024-03-07", "2024-03-06"]
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(daily_partitions.has_partition_key(r.partition_key) for r in requests)


def test_the_resweep_is_configurable(monkeypatch):
    monkeypatch.setenv("ORDERS_RESWEEP_DAYS", "0")
    assert [r.partition_key for r in evaluate()] == ["2024-03-09"]
    monkeypatch.setenv("ORDERS_RESWEEP_DAYS", "6")
    assert [r.partition_key for r in evaluate()][-1] == "2024-03-03"


def test_run_keys_differ_between_ticks_so_each_night_resweeps_again(monkeypatch):
    monkeypatch.delenv("ORDERS_RESWEEP_DAYS", raising=False)
    tonight = {r.run_key for r in evaluate()}
    tomorrow = {r.run_key for r in evaluate(TICK.replace(day=11))}
    assert not tonight & tomorrow


def test_the_schedule_targets_the_ingest_job_and_a_backfill_is_one_run_in_the_api_pool():
    schedule = next(s for s in defs.schedules if s.name == "daily_ingest_schedule")
    assert schedule.job_name == "mws_ingest"
    assert mws_orders.backfill_policy == dg.BackfillPolicy.single_run()  # a range: one run (Reports on SP-API)
    assert mws_orders.op.pool == MWS_POOL


def test_a_bad_resweep_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("ORDERS_RESWEEP_DAYS", "three")
    with pytest.raises(ValueError, match="ORDERS_RESWEEP_DAYS"):
        resweep_days()
