"""Incremental models: after new, rewritten, shrunk or removed raw partitions, an update by key gives exactly what a
build from scratch gives, and it recomputes only the keys the change touched."""

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from orders_pipeline.analytics import incremental
from orders_pipeline.analytics.project import load_project
from orders_pipeline.analytics.build import Build, ModelResult
from orders_pipeline.analytics.raw_tables import sql_literal

from .test_marts import shop_versions, write_raw

PROJECT = load_project()
RAW_TABLES = ("orders", "order_items")


def versions_on(*days: str) -> list:
    """The fixture shop's versions in the given dt partitions."""
    return [version for version in shop_versions() if version[0] in days]


def build(data_dir: Path, **options) -> dict[str, ModelResult]:
    """Build every model and return the results by name."""
    with Build(PROJECT, data_dir, **options) as session:
        return {result.name: result for result in session.run()}


def contents(data_dir: Path) -> dict[str, list[tuple]]:
    """Every model's rows as a later session reads them (kept tables, published Parquet, views), and every
    published file's rows, sorted."""
    with Build(PROJECT, data_dir) as session:
        rows = {name: session.execute(name, f"select * from {session.relation(name)} order by all").fetchall()
                for name in PROJECT.order}
        for name, model in PROJECT.models.items():
            if model.is_published:
                path = sql_literal(str(model.output_path(data_dir)))
                rows[f"{name}.parquet"] = session.con.execute(f"select * from read_parquet({path}) order by all").fetchall()
        return rows


def from_scratch(data_dir: Path, tmp_path: Path) -> dict[str, list[tuple]]:
    """The models built from a copy of the raw partitions alone, with no kept state."""
    fresh = tmp_path / f"fresh_{len(list(tmp_path.glob('fresh_*')))}"
    for table in RAW_TABLES:
        if (data_dir / table).exists():
            shutil.copytree(data_dir / table, fresh / table)
    build(fresh)
    return contents(fresh)


def refreshes(results: dict[str, ModelResult]) -> dict[str, str]:
    return {name: result.refresh for name, result in results.items() if PROJECT.models[name].is_incremental}


def remove_partition(data_dir: Path, dt: str) -> None:
    for table in RAW_TABLES:
        shutil.rmtree(data_dir / table / f"dt={dt}")


@pytest.fixture
def shop(tmp_path) -> Path:
    """The fixture shop without its last day (03-03), built once, so its incremental models are kept."""
    data_dir = tmp_path / "shop"
    write_raw(data_dir, versions_on("2024-02-20", "2024-03-01", "2024-03-02"))
    first = refreshes(build(data_dir))
    assert set(first.values()) == {"full: no kept table yet"}
    return data_dir


def test_a_new_day_recomputes_only_its_orders_and_purchase_days(shop, tmp_path):
    write_raw(shop, versions_on("2024-03-03"))
    results = build(shop)
    # 03-03 holds versions of O1, O4, O5 and O7, purchased on 03-01, 03-02, 03-03 and 03-01
    assert refreshes(results) == {
        "stg_orders": "incremental: 4 amazon_order_id value(s) recomputed",
        "stg_order_status_history": "incremental: 4 amazon_order_id value(s) recomputed",
        "stg_order_items": "incremental: 4 amazon_order_id value(s) recomputed",
        "sku_daily_sales": "incremental: 3 purchase_day value(s) recomputed",
        "sales_by_channel": "incremental: 3 purchase_day value(s) recomputed",
        # the trends from the day before the earliest of those days on (an order of UTC day 03-01 can fall on
        # Pacific day 02-29): 02-29 to 03-02 again, and the new 03-03
        "sku_sales_trends": "incremental: 4 day value(s) recomputed, from 2024-02-29 on",
        "sku_channel_trends": "incremental: 4 day value(s) recomputed, from 2024-02-29 on",
        "sku_trend_anomalies": "incremental: 0 day value(s) recomputed, from 2024-02-29 on",  # it flags no day
    }
    assert contents(shop) == from_scratch(shop, tmp_path)
    assert results["stg_orders"].row_count == 8  # O1, O4 and O7 were updated, O5 is new: still one row each


def test_a_rewritten_day_that_lost_versions_matches_a_full_build(shop, tmp_path):
    write_raw(shop, versions_on("2024-03-03"))
    build(shop)
    # 03-02 fetched again later: O1's and O7's versions of that day are gone (they changed on 03-03), O4 is
    # rewritten with another quantity, and O3 is gone with no other version: it leaves every model
    kept = [v for v in versions_on("2024-03-02") if v[1]["amazon_order_id"] == "O4"]
    kept[0][2][0]["quantity_ordered"] = 7
    remove_partition(shop, "2024-03-02")
    write_raw(shop, kept)
    results = build(shop)
    assert all(refresh.startswith("incremental") for refresh in refreshes(results).values())
    after = contents(shop)
    assert after == from_scratch(shop, tmp_path)
    assert "O3" not in {row[1] for row in after["stg_orders"]}
    # the partition index the update read through is the raw tables' (key, account, dt) triples as they are now
    with Build(PROJECT, shop) as session:
        for table in RAW_TABLES:
            kept = session.state().con.execute(
                f"select * from state._partitions__{table}__amazon_order_id order by all").fetchall()
            raw = session.con.execute(f"select distinct amazon_order_id, account, dt from "
                                      f"{session.source_relation('raw', table)} order by all").fetchall()
            assert kept == raw and ("O4", "default", date(2024, 3, 2)) in kept
            assert ("O1", "default", date(2024, 3, 2)) not in kept


def test_a_removed_day_and_an_unchanged_run_match_a_full_build(shop, tmp_path):
    remove_partition(shop, "2024-02-20")  # O8's only version
    results = build(shop)
    assert refreshes(results)["stg_orders"] == "incremental: 1 amazon_order_id value(s) recomputed"
    assert contents(shop) == from_scratch(shop, tmp_path)

    unchanged = build(shop)
    assert set(refreshes(unchanged).values()) == {
        "incremental: 0 amazon_order_id value(s) recomputed", "incremental: 0 purchase_day value(s) recomputed",
        "incremental: 0 day value(s) recomputed"}
    assert contents(shop) == from_scratch(shop, tmp_path)


def test_an_order_on_the_local_day_before_its_utc_day_updates_that_local_day(shop, tmp_path):
    from .test_marts import US, item, order

    # a new day, 03-03, holds one order bought at 03:00Z: 03-02 19:00 in Pacific time, the day Seller Central counts
    # it on. sku_daily_sales recomputes UTC day 03-03 only; the trends must update local day 03-02.
    lud = "2024-03-03T04:00"
    write_raw(shop, [("2024-03-03", order("N1", lud, "Shipped", "2024-03-03T03:00", "Amazon.com", "AFN", US, "9.00", "USD"),
                      [item("N1", lud, "N1-1", "SKU-A", 3, 3, "9.00", "USD")])])
    results = refreshes(build(shop))
    assert results["sku_daily_sales"] == "incremental: 1 purchase_day value(s) recomputed"
    assert results["sku_sales_trends"] == "incremental: 1 day value(s) recomputed, from 2024-03-02 on"
    after = contents(shop)
    assert after == from_scratch(shop, tmp_path)
    (sku_a,) = [row for row in after["sku_sales_trends.parquet"] if row[:4] == ("default", "SKU-A", "USD", date(2024, 3, 2))]
    assert sku_a[5] == 3  # units_ordered


EARLY_CHANNEL_TRENDS = "select * from state.sku_channel_trends where day < '2024-01-29' order by all"


def test_trends_recompute_from_the_earliest_changed_day_reading_their_windows_before_it(tmp_path):
    from .test_marts import series_versions

    data_dir = tmp_path / "series"
    write_raw(data_dir, series_versions())
    build(data_dir)
    with Build(PROJECT, data_dir) as session:
        before = session.state().con.execute(EARLY_CHANNEL_TRENDS).fetchall()
    # day 30 fetched again with its SHIFT order gone: every trend from day 30 on changes; the trends recompute from
    # the day before it (a local day can be the UTC day before), reading from day 29 - 55 on
    remove_partition(data_dir, "2024-01-30")
    write_raw(data_dir, [version for version in series_versions()
                         if version[0] == "2024-01-30" and not version[1]["amazon_order_id"].startswith("SHIFT")])
    results = refreshes(build(data_dir))
    assert results["sku_daily_sales"] == "incremental: 1 purchase_day value(s) recomputed"
    assert results["sku_channel_trends"] == "incremental: 32 day value(s) recomputed, from 2024-01-29 on"  # 29..60
    assert results["sku_sales_trends"] == "incremental: 32 day value(s) recomputed, from 2024-01-29 on"
    assert contents(data_dir) == from_scratch(data_dir, tmp_path)
    with Build(PROJECT, data_dir) as session:
        after = session.state().con.execute(EARLY_CHANNEL_TRENDS).fetchall()
        mfn_window = session.state().con.execute(
            "select units_28d from state.sku_channel_trends where seller_sku = 'SHIFT' and channel = 'MFN' "
            "and day = '2024-01-30'").fetchall()
    assert after == before  # the days before the change were kept as they were
    assert mfn_window == [(54,)]  # days 3..30: 28 days of 2 MFN units, less day 30's


def test_full_refresh_and_changed_settings_recompute_everything(shop, tmp_path):
    write_raw(shop, versions_on("2024-03-03"))
    assert set(refreshes(build(shop, full_refresh=True)).values()) == {"full: full refresh requested"}
    assert contents(shop) == from_scratch(shop, tmp_path)
    with Build(PROJECT, shop) as session:
        session.state().con.execute("update state._models set sql_hash = 'an older model' where name = 'stg_orders'")
    results = refreshes(build(shop))
    assert results["stg_orders"] == "full: its SQL or settings changed"
    assert results["sku_daily_sales"] == "full: stg_order_items was recomputed from scratch"


def test_a_downstream_model_that_missed_an_update_is_rebuilt(shop, tmp_path):
    write_raw(shop, versions_on("2024-03-03"))
    with Build(PROJECT, shop) as session:
        list(session.run(["stg_orders", "stg_order_items"]))  # the marts do not see this update
    results = refreshes(build(shop))
    assert results["stg_orders"].startswith("incremental: 0")
    assert results["sku_daily_sales"] == "full: it missed an update of stg_order_items"
    assert contents(shop) == from_scratch(shop, tmp_path)


def test_state_held_by_another_process_falls_back_to_a_full_build_in_memory(shop, tmp_path):
    write_raw(shop, versions_on("2024-03-03"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(incremental.state_path(shop))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        results = build(shop)
        published = {name: rows for name, rows in from_scratch(shop, tmp_path).items() if name.endswith(".parquet")}
    finally:
        holder.communicate("", timeout=30)
    assert all(refresh.startswith("full, not kept: ") and "is in use" in refresh
               for refresh in refreshes(results).values())
    assert {name: rows for name, rows in contents(shop).items() if name in published} == published


def test_dagster_runs_update_the_kept_tables_and_full_refresh_is_a_run_setting(shop, monkeypatch):
    import dagster as dg

    from orders_pipeline.defs.assets.analytics import analytics_assets

    monkeypatch.setenv("ORDERS_DATA_DIR", str(shop))
    write_raw(shop, versions_on("2024-03-03"))

    def materialize(**config) -> dict[str, str]:
        run_config = {"ops": {"analytics_models": {"config": config}}}
        result = dg.materialize(analytics_assets, instance=dg.DagsterInstance.ephemeral(), run_config=run_config)
        assert result.success
        return {m.asset_key.path[-1]: m.metadata["refresh"].value
                for m in result.asset_materializations_for_node("analytics_models") if "refresh" in m.metadata}

    assert materialize()["stg_orders"] == "incremental: 4 amazon_order_id value(s) recomputed"
    assert set(materialize(full_refresh=True).values()) == {"full: full refresh requested"}


def test_a_quarantined_purchase_date_is_a_null_key_updated_like_any_other(shop, tmp_path):
    from .test_marts import US, item, order

    def unknown_purchase(dt: str, lud: str, status: str, price: str | None) -> tuple:
        row = order("O9", lud, status, "2024-03-02T00:00", "Amazon.com", "AFN", US, price, "USD" if price else None)
        row.update(purchase_date=None, is_quarantined=True, quarantined_fields="purchase_date")
        return dt, row, [item("O9", lud, "O9-1", "SKU-E", 3, 0, price, "USD" if price else None)]

    write_raw(shop, [unknown_purchase("2024-03-02", "2024-03-02T23:00", "Unshipped", "30.00")] + versions_on("2024-03-02"))
    build(shop)
    write_raw(shop, [unknown_purchase("2024-03-03", "2024-03-03T09:00", "Shipped", "36.00")] + versions_on("2024-03-03"))
    results = build(shop)
    assert refreshes(results)["sku_daily_sales"] == "incremental: 4 purchase_day value(s) recomputed"  # null included
    after = contents(shop)
    assert after == from_scratch(shop, tmp_path)
    unknown_day = [row for row in after["sku_daily_sales"] if row[1] is None]
    assert len(unknown_day) == 1 and unknown_day[0][2] is None  # no UTC day, no local day
    assert unknown_day[0][7] == "SKU-E" and unknown_day[0][13] == Decimal("36.00")


def kept(data_dir: Path) -> dict[str, list[tuple]]:
    """Every incremental model's kept table and every published file, as the last build left them, sorted."""
    with Build(PROJECT, data_dir) as session:
        con = session.state().con
        rows = {name: con.execute(f"select * from {incremental.kept_table(name)} order by all").fetchall()
                for name, model in PROJECT.models.items() if model.is_incremental}
        for name, model in PROJECT.models.items():
            if model.is_published:
                path = sql_literal(str(model.output_path(data_dir)))
                rows[f"{name}.parquet"] = con.execute(f"select * from read_parquet({path}) order by all").fetchall()
        return rows


def land_the_last_day(data_dir: Path) -> None:
    """The fixture shop's last day (03-03) lands, as a concurrent ingest run publishes it."""
    write_raw(data_dir, versions_on("2024-03-03"))


def rewrite_a_day(data_dir: Path) -> None:
    """03-02 is fetched again into new files: O4 alone is left, with another quantity."""
    again = [v for v in versions_on("2024-03-02") if v[1]["amazon_order_id"] == "O4"]
    again[0][2][0]["quantity_ordered"] = 7
    remove_partition(data_dir, "2024-03-02")
    write_raw(data_dir, again)


@pytest.mark.parametrize("publish", [land_the_last_day, rewrite_a_day])
def test_raw_published_during_a_build_is_read_by_none_of_its_models_and_by_the_next_build(shop, tmp_path, publish):
    as_the_build_started = from_scratch(shop, tmp_path)
    with Build(PROJECT, shop) as session:
        for result in session.run():  # the models are built one by one; ingest publishes between two of them
            if result.name == "stg_orders":
                publish(shop)
    during = kept(shop)
    assert during == {name: as_the_build_started[name] for name in during}  # every model read the same snapshot

    results = build(shop)
    assert refreshes(results)["stg_order_status_history"] != "incremental: 0 amazon_order_id value(s) recomputed"
    assert all(refresh.startswith("incremental") for refresh in refreshes(results).values())
    assert contents(shop) == from_scratch(shop, tmp_path)


def test_a_build_removes_its_snapshot_and_those_crashed_builds_left(shop):
    snapshots = shop / incremental.STATE_DIR / incremental.SNAPSHOTS_DIR
    crashed, running = snapshots / "crashed", snapshots / "running"  # a build of another process runs meanwhile
    for folder in (crashed, running):
        (folder / "orders").mkdir(parents=True)
    a_day_ago = time.time() - incremental.STALE_SNAPSHOT_SECONDS - 60
    os.utime(crashed, (a_day_ago, a_day_ago))
    with Build(PROJECT, shop) as session:
        list(session.run(["stg_orders"]))
        (ours,) = set(snapshots.iterdir()) - {running}
        pinned = {path.relative_to(ours).as_posix() for path in ours.rglob("*.parquet")}
        assert pinned == {f"{table}/dt={dt}/part-0.parquet"
                          for table in RAW_TABLES for dt in ("2024-02-20", "2024-03-01", "2024-03-02")}
    assert list(snapshots.iterdir()) == [running]
