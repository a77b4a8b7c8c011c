"""The `dbt_like_sql/` loader: dependency graph, error messages that name file and line, vars, empty data."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from orders_pipeline.analytics.project import SqlProjectError, load_project
from orders_pipeline.analytics.build import Build, build_models
from orders_pipeline.analytics.warehouse import build_warehouse


def write_models(root: Path, files: dict[str, str]) -> Path:
    sql_dir = root / "models_dir"
    for relpath, text in files.items():
        path = sql_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return sql_dir


def test_the_repository_models_and_their_dependencies():
    project = load_project()
    models = project.models
    assert set(models) >= {
        "stg_orders", "stg_order_items", "stg_order_status_history", "sku_daily_sales", "sku_sales_trends",
        "sales_by_channel", "sku_channel_trends", "stuck_orders", "sku_stuck_summary", "sku_trend_anomalies",
    }
    assert models["stg_orders"].sources == (("raw", "orders"),)
    assert models["stg_order_items"].sources == (("raw", "order_items"),)
    assert set(models["stg_order_items"].refs) == {"stg_orders"}
    assert models["sku_daily_sales"].refs == ("stg_order_items",)
    assert set(models["stuck_orders"].refs) == {"stg_orders", "stg_order_status_history", "stg_order_items"}
    assert models["sku_trend_anomalies"].refs == ("sku_sales_trends",)
    assert {name for name, model in models.items() if not model.is_published} == {
        "stg_orders", "stg_order_items", "stg_order_status_history"}  # staging is never written; marts are
    assert {name: model.unique_key for name, model in models.items() if model.is_incremental} == {
        "stg_orders": "amazon_order_id", "stg_order_items": "amazon_order_id", "stg_order_status_history": "amazon_order_id",
        "sku_daily_sales": "purchase_day", "sales_by_channel": "purchase_day",
        "sku_sales_trends": "day", "sku_channel_trends": "day", "sku_trend_anomalies": "day"}
    # the trend marts over sku_daily_sales recompute from the day before its earliest change (local days)
    assert {name: model.lookback for name, model in models.items() if model.is_tail} == {
        "sku_sales_trends": 1, "sku_channel_trends": 1, "sku_trend_anomalies": 0}
    position = {name: i for i, name in enumerate(project.order)}
    for name, model in models.items():
        assert all(position[upstream] < position[name] for upstream in model.refs), name
        assert model.layer in {"staging", "marts"}
        if model.layer == "marts":
            assert "GRAIN:" in model.description and "RULES:" in model.description, name


def test_graph_of_a_small_folder(tmp_path):
    sql_dir = write_models(tmp_path, {
        "staging/b.sql": "-- b doc\nselect * from {{ source('raw', 'orders') }}\n",
        "marts/c.sql": "select * from {{ ref('b') }} join {{ ref('a') }} using (x)\n",
        "staging/a.sql": "select 1 as x\n",
    })
    project = load_project(sql_dir)
    assert project.models["c"].refs == ("b", "a")
    assert project.models["b"].description == "b doc"
    assert project.order.index("c") == 2
    assert project.models["c"].output_path(tmp_path) == tmp_path / "marts" / "c.parquet"


def test_unknown_ref_names_file_and_line(tmp_path):
    sql_dir = write_models(tmp_path, {"marts/a.sql": "with\n\nx as (select * from {{ ref('nope') }})\nselect * from x\n"})
    with pytest.raises(SqlProjectError, match=r"marts/a\.sql:3: ref\('nope'\) names no model"):
        load_project(sql_dir)


def test_unknown_source_names_file(tmp_path):
    sql_dir = write_models(tmp_path, {"staging/a.sql": "select * from {{ source('raw', 'refunds') }}\n"})
    with pytest.raises(SqlProjectError, match=r"staging/a\.sql:1: unknown source raw\.refunds"):
        load_project(sql_dir)


def test_cycle_names_the_files(tmp_path):
    sql_dir = write_models(tmp_path, {
        "marts/a.sql": "select * from {{ ref('b') }}\n",
        "marts/b.sql": "select * from {{ ref('a') }}\n",
        "marts/c.sql": "select 1 as x\n",
    })
    with pytest.raises(SqlProjectError, match=r"cycle") as error:
        load_project(sql_dir)
    assert "marts/a.sql" in str(error.value) and "marts/b.sql" in str(error.value)


def test_duplicate_model_names_are_refused(tmp_path):
    sql_dir = write_models(tmp_path, {"staging/a.sql": "select 1\n", "marts/a.sql": "select 2\n"})
    with pytest.raises(SqlProjectError, match=r"'a' is already used"):
        load_project(sql_dir)


def test_jinja_error_names_file_and_line(tmp_path):
    sql_dir = write_models(tmp_path, {"marts/a.sql": "select\n  {{ undefined_thing }}\n"})
    with pytest.raises(SqlProjectError, match=r"marts/a\.sql:2: UndefinedError"):
        load_project(sql_dir)


def test_sql_error_names_file_and_line(tmp_path):
    sql_dir = write_models(tmp_path, {
        "staging/good.sql": "select 1 as x\n",
        "marts/bad.sql": """
            -- a comment line
            with source as (select * from {{ ref('good') }})
            select
                no_such_column
            from source
        """,
    })
    project = load_project(sql_dir)
    with pytest.raises(SqlProjectError, match=r"marts/bad\.sql:4: Binder Error: .*no_such_column"):
        build_models(tmp_path / "data", project=project)
    assert (tmp_path / "data" / "staging" / "good.parquet").exists()  # built before the failure
    assert not (tmp_path / "data" / "marts" / "bad.parquet").exists()
    assert not list((tmp_path / "data").rglob("*.tmp"))


def test_vars_default_env_and_override(tmp_path, monkeypatch):
    sql_dir = write_models(tmp_path, {"marts/v.sql": "select {{ var('window_days', 7) }} as w, {{ var('z', 3.0) }} as z\n"})
    project = load_project(sql_dir)

    def built(**kwargs):
        build_models(tmp_path / "data", project=project, **kwargs)
        return duckdb.sql(f"from '{tmp_path}/data/marts/v.parquet'").fetchall()[0]

    assert built() == (7, 3.0)
    monkeypatch.setenv("ORDERS_VAR_WINDOW_DAYS", "9")
    monkeypatch.setenv("ORDERS_VAR_Z", "2.5")
    assert built() == (9, 2.5)
    assert built(vars={"window_days": 11, "z": "4"}) == (11, 4.0)  # explicit overrides win; strings are coerced


def test_subset_reads_upstream_parquet_and_says_when_missing(tmp_path):
    sql_dir = write_models(tmp_path, {
        "staging/a.sql": "select 41 as x\n",
        "marts/b.sql": "select x + 1 as y from {{ ref('a') }}\n",
    })
    project = load_project(sql_dir)
    with pytest.raises(SqlProjectError, match=r"build a first"):
        build_models(tmp_path / "data", select=["b"], project=project)
    build_models(tmp_path / "data", select=["a"], project=project)
    (result,) = build_models(tmp_path / "data", select=["b"], project=project)
    assert result.row_count == 1
    assert duckdb.sql(f"from '{result.path}'").fetchall() == [(42,)]


def test_empty_data_dir_builds_empty_marts_and_a_warehouse(tmp_path):
    results = build_models(tmp_path)
    project = load_project()
    assert {r.name for r in results} == set(project.models)
    assert all(r.row_count == 0 for r in results)
    assert (tmp_path / "marts" / "sales_by_channel.parquet").exists()
    assert not (tmp_path / "staging").exists()  # staging models are views: never written
    columns = [c[0] for c in duckdb.sql(f"describe from '{tmp_path}/marts/sku_daily_sales.parquet'").fetchall()]
    assert {"purchase_day", "seller_sku", "currency", "units_ordered", "revenue", "has_unpriced_lines"} <= set(columns)

    path, relations = build_warehouse(tmp_path, project)
    assert {"orders", "order_items", "sales_by_channel"} <= set(relations)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from sales_by_channel").fetchone() == (0,)
        assert con.execute("select count(*) from orders").fetchone() == (0,)
        assert con.execute("select count(*) from stg_order_items").fetchone() == (0,)


def test_warehouse_rebuild_does_not_wait_for_a_reader(tmp_path):
    build_models(tmp_path)
    project = load_project()
    path, _ = build_warehouse(tmp_path, project)
    reader = duckdb.connect(str(path), read_only=True)  # a user with the old file open
    try:
        build_warehouse(tmp_path, project)  # replaced by rename: no lock conflict
        assert reader.execute("select count(*) from stuck_orders").fetchone() == (0,)
    finally:
        reader.close()


UNPUBLISHED_PROJECT = {
    "staging/a.sql": "-- a doc\n{{ config(publish=false) }}\nselect 41 as x\n",
    "staging/b.sql": "{{ config(materialized='table', publish=false) }}\nselect x + 1 as y from {{ ref('a') }}\n",
    "marts/c.sql": "select y * 2 as z from {{ ref('b') }}\n",
}


def test_config_publish_false(tmp_path):
    project = load_project(write_models(tmp_path, UNPUBLISHED_PROJECT))
    assert [project.models[n].is_published for n in ("a", "b", "c")] == [False, False, True]
    assert project.models["a"].description == "a doc"
    results = {r.name: r for r in build_models(tmp_path / "data", project=project)}
    assert (results["a"].path, results["a"].row_count, results["a"].materialized) == (None, 1, "table")
    assert "select 41 as x" in results["a"].sql
    assert results["c"].path == tmp_path / "data" / "marts" / "c.parquet"
    assert not (tmp_path / "data" / "staging").exists()  # unpublished models are never written
    assert duckdb.sql(f"from '{results['c'].path}'").fetchall() == [(84,)]


def test_subset_computes_unselected_unpublished_models_inline(tmp_path):
    project = load_project(write_models(tmp_path, UNPUBLISHED_PROJECT))
    (result,) = build_models(tmp_path / "data", select=["c"], project=project)  # a and b: no file, computed inline
    assert result.row_count == 1 and duckdb.sql(f"from '{result.path}'").fetchall() == [(84,)]
    with Build(project, tmp_path / "data") as build:
        assert build.query("select * from {{ ref('b') }}").to_dict("records") == [{"y": 42}]
        list(build.run(["b"]))  # now a table of the session, read by later queries
        assert build.query("select * from {{ ref('b') }}").to_dict("records") == [{"y": 42}]


def test_warehouse_holds_unpublished_models_as_views(tmp_path):
    project = load_project(write_models(tmp_path, UNPUBLISHED_PROJECT))
    path, relations = build_warehouse(tmp_path / "data", project)  # nothing built: they need no file
    assert {"a", "b"} <= set(relations) and "c" not in relations
    build_models(tmp_path / "data", project=project)
    path, relations = build_warehouse(tmp_path / "data", project)
    with duckdb.connect(str(path), read_only=True) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
        assert (kinds["a"], kinds["b"], kinds["c"]) == ("VIEW", "VIEW", "VIEW")
        sql_of_b = con.execute("select sql from duckdb_views() where view_name = 'b'").fetchone()[0]
        assert "x + 1" in sql_of_b and "parquet" not in sql_of_b  # the model's own SQL, not a file
        assert con.execute("from b").fetchall() == [(42,)] and con.execute("from c").fetchall() == [(84,)]


def test_staging_views_agree_between_session_and_warehouse(tmp_path):
    from tests.test_marts import shop_versions, write_raw

    write_raw(tmp_path, shop_versions())
    project = load_project()
    path, _ = build_warehouse(tmp_path, project)
    with Build(project, tmp_path) as build:
        staging = ["stg_order_status_history", "stg_orders", "stg_order_items"]
        every_column = [f"select * from {{{{ ref('{name}') }}}}" for name in staging]
        results = {r.name: r for r in build.run(staging, reads=every_column)}
        with duckdb.connect(str(path), read_only=True) as con:
            for name, result in results.items():
                in_session = build.con.execute(f'select * from "{name}" order by all').fetchall()
                in_warehouse = con.execute(f'select * from "{name}" order by all').fetchall()
                assert in_session == in_warehouse and len(in_session) == result.row_count > 0, name


@pytest.mark.parametrize("text, message", [
    ("{{ config(materialized='view') }}\nselect 1\n",
     r"^models_dir/staging/a\.sql:1: materialized='view' is not one of table, incremental; "
     r"for a model that is not written, use publish=false$"),
    ("{{ config(materialized='snapshot') }}\nselect 1\n", r"staging/a\.sql:1: materialized='snapshot' is not"),
    ("{{ config(materialized='incremental') }}\nselect 1\n", r"staging/a\.sql:1: .* needs unique_key='<column>'"),
    ("select 1 as x\n{{ config(unique_key='x') }}\n", r"staging/a\.sql:2: unique_key applies to materialized='incremental'"),
    ("{{ config(materialized='incremental', unique_key='x', publish='no') }}\nselect 1 as x\n",
     r"staging/a\.sql:1: publish must be true or false"),
    ("select 1\n{{ config(schema='x') }}\n",
     r"staging/a\.sql:2: config\(\) accepts only incremental_strategy, lookback, materialized, publish, unique_key"),
    ("{{ config(materialized='incremental', unique_key='x', incremental_strategy='merge') }}\nselect 1 as x\n",
     r"staging/a\.sql:1: incremental_strategy='merge' is not one of by_key, tail"),
    ("{{ config(incremental_strategy='tail') }}\nselect 1 as x\n",
     r"staging/a\.sql:1: incremental_strategy applies to materialized='incremental' only"),
    ("{{ config(materialized='incremental', unique_key='dt', incremental_strategy='tail') }}\n"
     "select dt from {{ source('raw', 'orders') }}\n",
     r"staging/a\.sql:2: incremental_strategy='tail' reads incremental models only, not source\(\)"),
    ("{{ config(materialized='incremental', unique_key='x', lookback=1) }}\nselect 1 as x\n",
     r"staging/a\.sql:1: lookback applies to incremental_strategy='tail' only"),
    ("{{ config(materialized='incremental', unique_key='x', incremental_strategy='tail', lookback=-1) }}\nselect 1 as x\n",
     r"staging/a\.sql:1: lookback must be a whole number of key values, 0 or more \(got -1\)"),
    ("select 1 as x {% if not is_incremental() %}where {{ recompute_from() }}{% endif %}\n",
     r"staging/a\.sql: recompute_from\(\) is defined only inside"),
])
def test_bad_config_names_file_and_line(tmp_path, text, message):
    with pytest.raises(SqlProjectError, match=message):
        load_project(write_models(tmp_path, {"staging/a.sql": text}))


def test_build_defaults_to_orders_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path / "from_env"))
    results = build_models()
    assert results and all(str(result.path).startswith(str(tmp_path / "from_env")) for result in results if result.path)


CHAIN_PROJECT = {
    "staging/wide.sql": "{{ config(publish=false) }}\nselect range as id, range * 10 as amount from range(4)\n",
    "staging/even.sql": "{{ config(publish=false) }}\nselect * from {{ ref('wide') }} where id % 2 = 0\n",
    "marts/totals.sql": "select sum(amount) as amount from {{ ref('even') }}\n",
}


def test_a_run_keeps_in_memory_only_the_models_later_models_or_reads_need(tmp_path):
    project = load_project(write_models(tmp_path, CHAIN_PROJECT))
    with Build(project, tmp_path / "data") as build:
        held = []
        for result in build.run(reads=["select max(amount) as m from {{ ref('wide') }}"]):
            held.append((result.name, sorted(row[0] for row in build.con.execute(
                "select table_name from duckdb_tables() union all select view_name from duckdb_views() "
                "where not internal").fetchall())))
        # even is dropped once totals is built; wide stays for the read announced with `reads`
        assert held == [("wide", ["wide"]), ("even", ["even", "wide"]), ("totals", ["even", "totals", "wide"])]
        assert build.query("select max(amount) as m from {{ ref('wide') }}").to_dict("records") == [{"m": 30}]
        assert build.con.execute("select table_name from duckdb_tables() order by all").fetchall() == [("wide",)]
    assert duckdb.sql(f"from '{tmp_path}/data/marts/totals.parquet'").fetchall() == [(20,)]


def test_warehouse_builds_leave_a_concurrent_builds_temp_file_alone(tmp_path):
    """Another container's build (same pid, other host) is writing its temp file; only abandoned ones go."""
    build_models(tmp_path)
    in_progress = [tmp_path / f".warehouse.duckdb.{os.getpid()}.tmp", tmp_path / ".tmp-another-build"]
    abandoned = tmp_path / ".tmp-a-build-killed-days-ago"
    for path in [*in_progress, abandoned]:
        path.write_bytes(b"a warehouse being written")
    days_ago = time.time() - 3 * 86_400
    os.utime(abandoned, (days_ago, days_ago))
    build_warehouse(tmp_path, load_project())
    assert all(path.exists() for path in in_progress) and not abandoned.exists()
    assert not [path for path in tmp_path.glob(".tmp-*") if path not in in_progress]
