"""The models' checks guard what is published: on the simulator's messy data (quarantined purchase dates kept as a
null day) every blocking check passes; data or a model that breaks a rule fails the run, and the previous mart
files, kept state and warehouse stay as they were."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orders_pipeline.analytics import incremental
from orders_pipeline.analytics.project import Project, SQL_DIR, load_project
from orders_pipeline.analytics.build import Build, Guard
from orders_pipeline.defs.model_checks import CHECKS
from orders_pipeline.definitions import defs
from orders_pipeline.simulator import Faults, MwsSimulator, SimulatorConfig

from .conftest import FAST, resource_for
from .test_marts import shop_versions, write_raw

DAYS = [date(2024, 3, 1) + timedelta(days=offset) for offset in range(4)]


@pytest.fixture(scope="module")
def messy_raw(tmp_path_factory) -> Path:
    """Raw partitions of DAYS from the simulator with messy values (some purchase dates undecodable), each day
    ingested just after its midnight as the schedule would."""
    root = tmp_path_factory.mktemp("messy") / "data"
    server_now = [datetime.now(timezone.utc)]
    config = SimulatorConfig(time_scale=FAST, orders_per_day=80, clock=lambda: server_now[0],
                             faults=Faults(messy_values=True))
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("ORDERS_DATA_DIR", str(root))
        with MwsSimulator(config) as simulator:
            for day in DAYS:
                server_now[0] = datetime.combine(day + timedelta(days=1), time(0, 15), timezone.utc)
                run = defs.resolve_job_def("mws_ingest").execute_in_process(
                    partition_key=day.isoformat(), instance=instance, resources={"mws": resource_for(simulator)}
                )
                assert run.success
    return root


@pytest.fixture
def messy(messy_raw: Path, tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """A copy of the messy raw data as this test's ORDERS_DATA_DIR, with no marts or state yet."""
    root = tmp_path / "data"
    shutil.copytree(messy_raw, root)
    monkeypatch.setenv("ORDERS_DATA_DIR", str(root))
    yield root


def refresh_analytics(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The README's `group:analytics` run, as the job the automation launches."""
    return defs.resolve_job_def("refresh_analytics").execute_in_process(instance=instance, raise_on_error=False)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def published(root: Path) -> dict[str, str]:
    """A digest of every published file: the marts and the warehouse."""
    files = [*sorted((root / "marts").glob("*.parquet")), root / "warehouse.duckdb"]
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def kept_versions(root: Path) -> dict[str, int]:
    """The version of every kept table in the state database."""
    with duckdb.connect(str(incremental.state_path(root)), read_only=True) as con:
        return dict(con.execute("select name, version from _models").fetchall())


def test_blocking_checks_pass_on_messy_data_with_null_days(messy):
    with dg.DagsterInstance.ephemeral() as instance:
        result = refresh_analytics(instance)
        assert result.success
        checks = evaluations(result)
    assert set(checks) == {(check.asset, check.name) for check in CHECKS}  # every check ran
    errors = {key: e for key, e in checks.items() if e.severity == dg.AssetCheckSeverity.ERROR}
    assert {key for key, e in errors.items() if not e.passed} == set()
    assert all(e.blocking for e in errors.values())
    # the orders whose purchase date could not be decoded are counted, on a null day: as many as the raw data has
    ((quarantined_sales,),) = duckdb.sql(f"""
        select count(*) from (
            select amazon_order_id, arg_max(order_status, last_update_date) as status
            from read_parquet('{messy}/orders/*/*.parquet') group by all having bool_or(purchase_date is null)
        ) where status <> 'Canceled'
    """).fetchall()
    assert quarantined_sales > 0
    ((null_day_orders,),) = duckdb.sql(
        f"select sum(orders) from '{messy}/marts/sales_by_channel.parquet' where purchase_day is null"
    ).fetchall()
    assert null_day_orders == quarantined_sales


def test_orders_without_their_items_fail_the_run_and_keep_what_was_published(messy):
    with dg.DagsterInstance.ephemeral() as instance:
        assert refresh_analytics(instance).success
        before, state_before = published(messy), kept_versions(messy)
        contents_before = mart_rows(messy)
        # the orders of the last day landed, their items did not (a crash between the two renames)
        items = messy / "order_items" / f"dt={DAYS[-1]}" / "part-0.parquet"
        saved = items.read_bytes()
        items.unlink()

        failed = refresh_analytics(instance)
        assert not failed.success
        check = evaluations(failed)[("stg_order_items", "current_orders_have_items")]
        assert not check.passed and check.blocking and check.metadata["failing_rows"].value > 0
        (failure,) = failed.get_step_failure_events()
        assert "stg_order_items: current_orders_have_items" in failure.step_failure_data.error.message
        assert {e.asset_key.path[-1] for e in failed.get_asset_materialization_events()} <= {"stg_orders",
                                                                                             "stg_order_status_history"}
        assert published(messy) == before  # marts and warehouse untouched
        assert kept_versions(messy)["stg_order_items"] == state_before["stg_order_items"]

        items.write_bytes(saved)  # the items land: the next run publishes what the data says
        assert refresh_analytics(instance).success
    assert mart_rows(messy) == contents_before


def mart_rows(root: Path) -> dict[str, list[tuple]]:
    """Every published mart's rows, sorted."""
    return {path.stem: duckdb.sql(f"select * from '{path}' order by all").fetchall()
            for path in sorted((root / "marts").glob("*.parquet"))}


def broken_project(tmp_path: Path) -> Project:
    """The repository's models, with sku_daily_sales counting Canceled orders as sales."""
    folder = tmp_path / "dbt_like_sql"
    shutil.copytree(SQL_DIR, folder)
    mart = folder / "marts" / "sku_daily_sales.sql"
    text = mart.read_text()
    assert "where order_status is distinct from 'Canceled'" in text
    mart.write_text(text.replace("where order_status is distinct from 'Canceled'", ""))
    return load_project(folder)


def guards() -> dict[str, list[Guard]]:
    """The blocking checks of every model, as the Dagster asset passes them."""
    by_model: dict[str, list[Guard]] = {}
    for check in CHECKS:
        if check.blocking:
            by_model.setdefault(check.asset, []).append(check.guard)
    return by_model


def test_a_broken_mart_is_not_published_nor_kept_and_its_readers_are_not_built(tmp_path):
    data_dir = tmp_path / "shop"
    write_raw(data_dir, shop_versions())
    with Build(load_project(), data_dir) as good:
        assert [r.name for r in good.run(guards=guards()) if r.rejected_by] == []
    held_back = ["sales_by_channel", "sku_channel_trends", "sku_daily_sales", "sku_sales_trends", "sku_trend_anomalies"]
    before, state_before = published_marts(data_dir, held_back), kept_versions(data_dir)

    with Build(broken_project(tmp_path), data_dir) as broken:
        results = {r.name: r for r in broken.run(guards=guards())}
    rejected = results["sku_daily_sales"]
    assert rejected.rejected_by == ["reconciles_with_stg_order_items"] and rejected.path is None
    assert len(rejected.checks["reconciles_with_stg_order_items"]) == 1  # 2024-03-02 USD: O4's 5 Canceled units
    # sales_by_channel's check reads sku_daily_sales; the trend marts read it
    assert not set(held_back) - {"sku_daily_sales"} & set(results)
    assert {"stg_orders", "stuck_orders", "sku_stuck_summary"} <= set(results)
    assert published_marts(data_dir, held_back) == before
    assert kept_versions(data_dir)["sku_daily_sales"] == state_before["sku_daily_sales"]


def published_marts(root: Path, names: list[str]) -> dict[str, str]:
    """A digest of the named marts' published files."""
    return {name: hashlib.sha256((root / "marts" / f"{name}.parquet").read_bytes()).hexdigest() for name in names}
