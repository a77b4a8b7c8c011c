"""Several seller accounts in one data dir: every model carries `account`, and each account's rows are exactly what
its data built alone gives, after a full build and after incremental updates that change one account only.

Account data comes from real runs: the session's `landed` data (21 days, simulator seed 7) and a second shop ingested
here through the same Dagster job from a simulator with another seed. The shared data dir holds the first as the flat
layout (`dt=D`, account 'default'), the second as `account=b/dt=D`, and a copy of the first without its last day as
`account=a2/dt=D`: two accounts share order ids, some of them in other versions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orders_pipeline.analytics.build import Build, ModelResult
from orders_pipeline.analytics.project import load_project
from orders_pipeline.analytics.raw_tables import sql_literal
from orders_pipeline.analytics.warehouse import build_warehouse
from orders_pipeline.cli.lookup import order_items, order_versions
from orders_pipeline.cli.main import main
from orders_pipeline.cli.output import EXIT_NOT_FOUND, EXIT_OK
from orders_pipeline.defs.model_checks import CHECKS
from orders_pipeline.insights.reports import TOP_SKUS, write_reports
from orders_pipeline.storage.layout import mart_path
from orders_pipeline.definitions import defs
from orders_pipeline.simulator import MwsSimulator, SimulatorConfig

from .conftest import FAST, resource_for
from .test_reports import texts

PROJECT = load_project()
RAW_TABLES = ("orders", "order_items")
B_SEED = 11
B_DAYS = [date(2024, 3, 14) + timedelta(days=offset) for offset in range(8)]  # the last one lands later
A2_MISSES = (date(2024, 3, 21),)  # the last landed day


@dataclass
class ShopB:
    """The second shop's own data dir, and a way to land one more of its days there through Dagster."""

    root: Path
    simulator: MwsSimulator
    instance: dg.DagsterInstance
    server_now: list[datetime]

    def ingest(self, day: date) -> None:
        """Run the ingest job for `day` just after its midnight, as the schedule does."""
        self.server_now[0] = datetime.combine(day + timedelta(days=1), time(0, 15), timezone.utc)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ORDERS_DATA_DIR", str(self.root))
            run = defs.resolve_job_def("mws_ingest").execute_in_process(
                partition_key=day.isoformat(), instance=self.instance, resources={"mws": resource_for(self.simulator)}
            )
        assert run.success


@pytest.fixture(scope="module")
def shop_b(tmp_path_factory) -> Iterator[ShopB]:
    """Shop B's days but the last, ingested from a simulator with its own seed (other orders, other ids)."""
    server_now = [datetime.now(timezone.utc)]
    config = SimulatorConfig(seed=B_SEED, time_scale=FAST, clock=lambda: server_now[0])
    with MwsSimulator(config) as simulator, dg.DagsterInstance.ephemeral() as instance:
        shop = ShopB(tmp_path_factory.mktemp("shop_b") / "data", simulator, instance, server_now)
        for day in B_DAYS[:-1]:
            shop.ingest(day)
        yield shop


def copy_raw(source: Path, target: Path, account: str | None = None, without: tuple[date, ...] = ()) -> None:
    """Copy the raw partitions of a flat data dir (all but the days `without`) into `target`, flat or under
    `account=NAME`."""
    skipped = {f"dt={day}" for day in without}
    for table in RAW_TABLES:
        destination = target / table / (f"account={account}" if account else "")
        for partition in sorted((source / table).glob("dt=*")):
            if partition.name not in skipped:
                shutil.copytree(partition, destination / partition.name, dirs_exist_ok=True)


def build(data_dir: Path) -> dict[str, ModelResult]:
    with Build(PROJECT, data_dir) as session:
        return {result.name: result for result in session.run()}


def alone(raw_of: Path, tmp_path: Path, without: tuple[date, ...] = ()) -> Path:
    """A fresh data dir holding only the given flat data dir's raw partitions (but the days `without`), all models
    built."""
    fresh = tmp_path / f"alone_{len(list(tmp_path.glob('alone_*')))}"
    copy_raw(raw_of, fresh, without=without)
    build(fresh)
    return fresh


def rows(data_dir: Path, account: str | None = None) -> dict[str, list[tuple]]:
    """Every model's rows as a later session reads them (kept tables, Parquet, views), of one account without the
    account column, or of all accounts."""
    only = f"select * exclude (account) from {{}} where account = {sql_literal(account)}" if account else "select * from {}"
    with Build(PROJECT, data_dir) as session:
        return {name: session.execute(name, only.format(session.relation(name)) + " order by all").fetchall()
                for name in PROJECT.order}


@pytest.fixture
def shared(landed, shop_b, tmp_path) -> Path:
    """One data dir with three accounts in both layouts: 'default' (flat) = landed, b = shop B, a2 = landed without
    its last day (the orders that changed that day are current in an older version there)."""
    root = tmp_path / "shared"
    copy_raw(landed.root, root)
    copy_raw(shop_b.root, root, "b")
    copy_raw(landed.root, root, "a2", without=A2_MISSES)
    return root


def test_each_account_of_a_shared_data_dir_equals_its_data_built_alone(shared, landed, shop_b, tmp_path):
    build(shared)
    together = {account: rows(shared, account) for account in ("default", "a2", "b")}
    built_alone = {"default": alone(landed.root, tmp_path), "a2": alone(landed.root, tmp_path, A2_MISSES),
                   "b": alone(shop_b.root, tmp_path)}
    for account, data_dir in built_alone.items():
        each = rows(data_dir, "default")
        for name in PROJECT.order:
            assert together[account][name] == each[name], (account, name)
        assert all(each[name] for name in PROJECT.order if name != "sku_trend_anomalies")  # the comparison has data
    every = rows(shared)
    assert {name: len(every[name]) for name in PROJECT.order} == {
        name: sum(len(together[account][name]) for account in together) for name in PROJECT.order}
    with Build(PROJECT, shared) as session:  # every blocking data test passes on the shared grain
        for check in CHECKS:
            if check.blocking:
                assert session.query(check.sql).empty, (check.asset, check.name)


def order_ids(flat_root: Path, day: date) -> int:
    """How many orders have versions in one day of a flat data dir."""
    ((count,),) = duckdb.sql(f"select count(distinct amazon_order_id) from read_parquet("
                             f"'{flat_root}/orders/dt={day}/*.parquet')").fetchall()
    return count


def test_updates_that_change_one_account_equal_a_full_build(shared, landed, shop_b, tmp_path):
    build(shared)
    shop_b.ingest(B_DAYS[-1])  # B lands a new day: only account b's partitions change
    copy_raw(shop_b.root, shared, "b")
    results = build(shared)
    # just the orders of b's new day are recomputed
    assert results["stg_orders"].refresh == f"incremental: {order_ids(shop_b.root, B_DAYS[-1])} amazon_order_id value(s) recomputed"
    after = rows(shared)
    assert after == rows(from_scratch(shared, tmp_path))
    assert rows(shared, "b") == rows(alone(shop_b.root, tmp_path), "default")

    # account a2 loses a day; 'default' holds the same order ids and must keep every one of its rows
    lost = date(2024, 3, 10)
    for table in RAW_TABLES:
        shutil.rmtree(shared / table / "account=a2" / f"dt={lost}")
    results = build(shared)
    # the histories of the orders with a version that day (in a2 and, sharing the ids, in 'default') are recomputed
    history = results["stg_order_status_history"].refresh
    assert history == f"incremental: {order_ids(landed.root, lost)} amazon_order_id value(s) recomputed"
    assert all(result.refresh.startswith("incremental") for result in results.values() if result.refresh)
    assert rows(shared) == rows(from_scratch(shared, tmp_path))
    assert rows(shared, "default") == of_account(after, "default")
    assert rows(shared, "a2") == rows(alone(landed.root, tmp_path, (*A2_MISSES, lost)), "default")


def of_account(listing: dict[str, list[tuple]], account: str) -> dict[str, list[tuple]]:
    """One account's rows of an all-accounts listing, without the account (each model's first column)."""
    return {name: [row[1:] for row in model_rows if row[0] == account] for name, model_rows in listing.items()}


def from_scratch(data_dir: Path, tmp_path: Path) -> Path:
    """A copy of a data dir's raw partitions (both layouts) with every model built from scratch."""
    fresh = tmp_path / f"fresh_{len(list(tmp_path.glob('fresh_*')))}"
    for table in RAW_TABLES:
        shutil.copytree(data_dir / table, fresh / table)
    build(fresh)
    return fresh


def test_the_warehouse_and_the_order_lookup_read_both_layouts_with_the_account(shared, landed):
    build(shared)
    path, names = build_warehouse(shared, PROJECT)
    with duckdb.connect(str(path), read_only=True) as con:
        for name in names:
            accounts = {account for (account,) in con.execute(f'select distinct account from "{name}"').fetchall()}
            assert accounts <= {"default", "a2", "b"} and (accounts or name == "sku_trend_anomalies"), name
        assert {a for (a,) in con.execute("select distinct account from orders").fetchall()} == {"default", "a2", "b"}
        ((order_id,),) = con.execute("select amazon_order_id from stg_orders where account = 'default' "
                                     "order by amazon_order_id limit 1").fetchall()
    versions = order_versions(shared, order_id)
    assert {version["account"] for version in versions} == {"default", "a2"}  # a2 holds a copy of the same order
    only_a2 = order_versions(shared, order_id, account="a2")
    assert only_a2 and {version["account"] for version in only_a2} == {"a2"}
    assert [v["last_update_date"] for v in only_a2] == [v["last_update_date"] for v in order_versions(landed.root, order_id)]
    latest = only_a2[-1]
    items = order_items(shared, order_id, str(latest["dt"]), latest["last_update_date"], account="a2")
    alone_items = order_items(landed.root, order_id, str(latest["dt"]), latest["last_update_date"])
    assert items and items == [{**item, "account": "a2"} for item in alone_items]


def test_charts_of_several_accounts_draw_each_account_apart(shared):
    build(shared)
    trends, channels = write_reports(shared)
    sales = mart_path(shared, "sales_by_channel")
    expected = duckdb.sql(f"select distinct account || ' · ' || sales_channel || ' · ' || fulfillment_channel "
                          f"from '{sales}'").fetchall()
    assert sorted(label for (label,) in expected) == sorted(t for t in texts(channels.svg) if " · " in t)
    panels = [t for t in texts(trends.svg) if "units in the latest 28 days" in t]
    assert len(panels) == TOP_SKUS and all(t.split(" · ")[0] in ("default", "a2", "b") for t in panels)


def test_the_order_command_looks_in_every_account_at_once_and_names_those_holding_the_order(shared, tmp_path,
                                                                                           monkeypatch, capsys):
    (tmp_path / "accounts.yaml").write_text("accounts:\n  - name: a2\n    source: mws\n  - name: b\n    source: mws\n")
    monkeypatch.setenv("ORDERS_ACCOUNTS_FILE", str(tmp_path / "accounts.yaml"))
    monkeypatch.setenv("ORDERS_DATA_DIR", str(shared))
    ((order_id,),) = duckdb.sql(f"select amazon_order_id from '{shared}/orders/dt=*/*.parquet' "
                                "order by amazon_order_id limit 1").fetchall()

    code = main(["order", order_id])

    out, err = capsys.readouterr()
    assert code == EXIT_OK and f"accounts a2, default all hold {order_id}; showing a2" in err
    assert f"Order {order_id} (account a2):" in out
    assert main(["order", order_id, "--account", "b"]) == EXIT_NOT_FOUND
