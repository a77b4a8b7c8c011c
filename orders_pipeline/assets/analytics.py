"""The `dbt_like_sql/` models as Dagster assets (group `analytics`), their checks and their automation.

One multi-asset holds every model plus the `warehouse` file: one process and one DuckDB connection build the
selected models in dependency order. Marts are published as Parquet; staging is never written as Parquet. An
incremental model (the staging models, the day-grained and the trend marts) is updated by key in the build's state
database, so a run recomputes only the orders and days that changed. The materialization of an unpublished model
records its rendered definition and row count, and the warehouse holds it as a view; an incremental model's says
how it was refreshed (`refresh`). A subset run reads unselected models from their kept table or Parquet, else inline.
The raw assets `orders` and `order_items` are upstream; when their partitions land, the automation sensor
refreshes the models.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from orders_pipeline import sql
from orders_pipeline import storage
from orders_pipeline.warehouse import build_warehouse

PROJECT = sql.load_project()

GROUP = "analytics"
SOURCE_ASSET_KEYS = {("raw", "orders"): dg.AssetKey("orders"), ("raw", "order_items"): dg.AssetKey("order_items")}
WAREHOUSE_KEY = dg.AssetKey("warehouse")
ANALYTICS_POOL = "analytics"
"""Analytics runs take turns (one slot in dagster.yaml), so each updates the kept state of the one before."""

# Eager, but an unpartitioned model depending on daily partitions must not wait for *every* historic day to exist.
AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


class AnalyticsConfig(dg.Config):
    """Run settings; both default to the environment."""

    data_dir: str | None = Field(default=None, description="Root of raw and output data; default $ORDERS_DATA_DIR or ./data")
    vars: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of the models' var() settings, e.g. {'stuck_after_days': '10'} (else $ORDERS_VAR_<NAME>)",
    )
    full_refresh: bool = Field(
        default=False, description="Recompute the incremental models from scratch instead of updating them"
    )


# --------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class SqlCheck:
    """A data test on a model: SQL (jinja, with ref/source/var) returning the offending rows; none means pass."""

    asset: str
    name: str
    description: str
    sql: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        """The Dagster key of this check."""
        return dg.AssetCheckKey(dg.AssetKey(self.asset), self.name)


def unique(model: str, *columns: str) -> SqlCheck:
    """A check that the columns form a unique key of the model."""
    cols = ", ".join(columns)
    return SqlCheck(
        model,
        "unique_" + "_".join(columns) if len(columns) < 3 else "unique_grain",
        f"({cols}) is unique",
        f"select {cols}, count(*) as n_rows from {{{{ ref('{model}') }}}} group by all having count(*) > 1",
    )


def not_null(model: str, *columns: str) -> SqlCheck:
    """A check that the key columns are never null."""
    condition = " or ".join(f"{c} is null" for c in columns)
    return SqlCheck(
        model,
        "not_null_keys",
        f"{', '.join(columns)} are never null",
        f"select * from {{{{ ref('{model}') }}}} where {condition}",
    )


def non_negative(model: str, *columns: str) -> SqlCheck:
    """A check that the quantity columns are never negative."""
    condition = " or ".join(f"{c} < 0" for c in columns)
    return SqlCheck(
        model,
        "non_negative_quantities",
        f"{', '.join(columns)} are never negative",
        f"select * from {{{{ ref('{model}') }}}} where {condition}",
    )


CHECKS: list[SqlCheck] = [
    unique("stg_orders", "amazon_order_id"),
    not_null("stg_orders", "amazon_order_id", "last_update_date", "order_status"),
    unique("stg_order_items", "amazon_order_id", "order_item_id"),
    not_null("stg_order_items", "amazon_order_id", "order_item_id"),
    non_negative("stg_order_items", "quantity_ordered", "quantity_shipped"),
    SqlCheck(
        "stg_order_items",
        "items_have_orders",
        "every raw item's order version (same amazon_order_id and dt) is present in the raw orders",
        """
        select items.amazon_order_id, items.order_item_id, items.dt
        from {{ source('raw', 'order_items') }} as items
        anti join {{ source('raw', 'orders') }} as orders
            on items.amazon_order_id = orders.amazon_order_id and items.dt = orders.dt
        """,
    ),
    unique("stg_order_status_history", "amazon_order_id", "version_number"),
    SqlCheck(
        "stg_order_status_history",
        "one_current_version",
        "every order has exactly one current version, and it is the version stg_orders keeps",
        """
        select orders.amazon_order_id, count(history.amazon_order_id) as current_versions
        from {{ ref('stg_orders') }} as orders
        left join {{ ref('stg_order_status_history') }} as history
            on orders.amazon_order_id = history.amazon_order_id
            and history.is_current
            and history.valid_from is not distinct from orders.last_update_date
            and history.dt = orders.dt
        group by all
        having count(history.amazon_order_id) <> 1
        """,
    ),
    unique(
        "sku_daily_sales",
        "purchase_day", "purchase_day_local", "marketplace_id", "sales_channel", "fulfillment_channel", "seller_sku",
        "asin", "currency",
    ),
    not_null("sku_daily_sales", "purchase_day", "seller_sku"),
    non_negative("sku_daily_sales", "units_ordered", "units_shipped", "unpriced_units"),
    unique(
        "sales_by_channel",
        "purchase_day", "purchase_day_local", "marketplace_timezone", "sales_channel", "fulfillment_channel", "currency",
    ),
    not_null("sales_by_channel", "purchase_day"),
    non_negative("sales_by_channel", "orders", "units_ordered", "units_shipped"),
    SqlCheck(
        "sales_by_channel",
        "reconciles_with_sku_daily_sales",
        "revenue and units per (purchase_day, currency) equal the sums over sku_daily_sales",
        """
        with
        by_channel as (
            select purchase_day, currency, sum(revenue) as revenue, sum(units_ordered) as units
            from {{ ref('sales_by_channel') }} group by all
        ),
        by_sku as (
            select purchase_day, currency, sum(revenue) as revenue, sum(units_ordered) as units
            from {{ ref('sku_daily_sales') }} group by all
        )
        select
            coalesce(by_channel.purchase_day, by_sku.purchase_day) as purchase_day,
            coalesce(by_channel.currency, by_sku.currency) as currency,
            by_channel.revenue as channel_revenue, by_sku.revenue as sku_revenue,
            by_channel.units as channel_units, by_sku.units as sku_units
        from by_channel
        full outer join by_sku
            on by_channel.purchase_day = by_sku.purchase_day
            and by_channel.currency is not distinct from by_sku.currency
        where by_channel.revenue is distinct from by_sku.revenue or by_channel.units is distinct from by_sku.units
        """,
    ),
    unique("sku_sales_trends", "seller_sku", "currency", "day"),
    non_negative("sku_sales_trends", "units_ordered", "units_shipped"),
    unique("sku_channel_trends", "seller_sku", "dimension", "channel", "day"),
    unique("stuck_orders", "amazon_order_id"),
    SqlCheck(
        "stuck_orders",
        "no_stuck_orders",
        "no order has been in its status too long (warns with the stuck orders)",
        "select amazon_order_id, order_status, hours_in_status, reason from {{ ref('stuck_orders') }}"
        " order by hours_in_status desc",
        severity=dg.AssetCheckSeverity.WARN,
    ),
    unique("sku_stuck_summary", "seller_sku", "asin"),
    unique("sku_trend_anomalies", "seller_sku", "day"),
]


def _run_check(build: sql.Build, check: SqlCheck) -> dg.AssetCheckResult:
    failing = build.query(check.sql, label=f"check {check.asset}.{check.name}")
    metadata: dict[str, dg.MetadataValue | int] = {"failing_rows": len(failing)}
    if len(failing):
        metadata["preview"] = dg.MetadataValue.md(failing.head(10).to_markdown(index=False))
    return dg.AssetCheckResult(
        asset_key=check.asset,
        check_name=check.name,
        passed=len(failing) == 0,
        severity=check.severity,
        description=check.description,
        metadata=metadata,
    )


# --------------------------------------------------------------------------------------------- assets


def _deps(model: sql.Model) -> list[dg.AssetKey]:
    return [SOURCE_ASSET_KEYS[s] for s in model.sources] + [dg.AssetKey(name) for name in model.refs]


def _spec(model: sql.Model) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=model.name,
        deps=_deps(model),
        description=model.description,
        group_name=GROUP,
        kinds={"duckdb", "sql", "parquet"} if model.is_published else {"duckdb", "sql"},
        tags={"layer": model.layer, "materialized": model.materialized},
        code_version=hashlib.sha256(model.template.encode()).hexdigest()[:12],
        metadata={"sql_file": PROJECT.relpath(model), "materialized": model.materialized},
        automation_condition=AUTOMATION,
        skippable=True,
    )


MODEL_SPECS = [_spec(PROJECT.models[name]) for name in PROJECT.order]
WAREHOUSE_SPEC = dg.AssetSpec(
    key=WAREHOUSE_KEY,
    deps=[spec.key for spec in MODEL_SPECS] + list(SOURCE_ASSET_KEYS.values()),
    description="warehouse.duckdb: views over the raw Parquet and every model, for `duckdb data/warehouse.duckdb`.",
    group_name=GROUP,
    kinds={"duckdb"},
    automation_condition=AUTOMATION,
    skippable=True,
)


@dg.multi_asset(
    name="analytics_models",
    specs=[*MODEL_SPECS, WAREHOUSE_SPEC],
    check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description) for c in CHECKS],
    can_subset=True,
    pool=ANALYTICS_POOL,
)
def analytics_models(context: dg.AssetExecutionContext, config: AnalyticsConfig) -> Iterator[object]:
    """Build the selected SQL models in dependency order, publish them as Parquet, check them, refresh the warehouse."""
    data_dir = Path(config.data_dir) if config.data_dir else storage.data_dir()
    selected = {key.path[-1] for key in context.selected_asset_keys}
    models = [name for name in PROJECT.order if name in selected]
    selected_checks = [check for check in CHECKS if check.key in context.selected_asset_check_keys]
    with sql.Build(PROJECT, data_dir, config.vars, full_refresh=config.full_refresh) as build:
        for result in build.run(models, reads=[check.sql for check in selected_checks]):
            context.log.info(_built_line(result))
            yield dg.MaterializeResult(asset_key=result.name, metadata=_model_metadata(result, build.data_dir))
        for check in selected_checks:
            yield _run_check(build, check)
    if WAREHOUSE_KEY in context.selected_asset_keys:
        path, relations = build_warehouse(data_dir, PROJECT, config.vars)
        yield dg.MaterializeResult(asset_key=WAREHOUSE_KEY, metadata=_warehouse_metadata(path, relations))


def _built_line(result: sql.ModelResult) -> str:
    """One log line per model: rows, where it went and, for an incremental model, how it was brought up to date."""
    where = f"-> {result.path}" if result.path is not None else f"({result.materialized}, not written)"
    refresh = f"; {result.refresh}" if result.refresh else ""
    return f"{result.name}: {result.row_count} rows {where}{refresh}"


def _model_metadata(result: sql.ModelResult, data_dir: Path) -> dict[str, object]:
    """Row count, a preview, and the file (published) or the definition (unpublished) of one model."""
    metadata: dict[str, object] = {
        "dagster/row_count": result.row_count,
        "materialized": result.materialized,
        "data_dir": str(data_dir),
    }
    if result.refresh:
        metadata["refresh"] = result.refresh
    metadata["preview"] = dg.MetadataValue.md(result.preview.head(10).to_markdown(index=False))
    if result.path is None:
        metadata["definition"] = dg.MetadataValue.md(f"```sql\n{result.sql.strip()}\n```")
    else:
        metadata["path"] = dg.MetadataValue.path(str(result.path))
    return metadata


def _warehouse_metadata(path: Path, relations: list[str]) -> dict[str, object]:
    """Where the warehouse file is, what it holds and how to query it."""
    return {
        "path": dg.MetadataValue.path(str(path)),
        "relations": ", ".join(relations),
        "query": dg.MetadataValue.md(f"```\nduckdb {path} -c \"from sales_by_channel\"\n```"),
    }


analytics_assets: list[dg.AssetsDefinition] = [analytics_models]
analytics_sensors = [
    dg.AutomationConditionSensorDefinition(
        "analytics_automation",
        target=dg.AssetSelection.assets(*[spec.key for spec in MODEL_SPECS], WAREHOUSE_KEY),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
]
