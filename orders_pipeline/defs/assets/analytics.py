"""The `dbt_like_sql/` models as Dagster assets (group `analytics`), their checks and their automation.

One multi-asset holds every model plus the `warehouse` file: one process and one DuckDB connection build the
selected models in dependency order. Marts are published as Parquet; staging is never written as Parquet. An
incremental model (the staging models, the day-grained and the trend marts) is updated by key in the build's state
database, so a run recomputes only the orders and days that changed. The materialization of an unpublished model
records its rendered definition and row count, and the warehouse holds it as a view; an incremental model's says
how it was refreshed (`refresh`). A subset run reads unselected models from their kept table or Parquet, else inline.
The raw assets `orders` and `order_items` are upstream; when their partitions land, the automation sensor
refreshes the models.

Checks of severity ERROR are blocking: they run on each model's candidate before it is kept or published, and a
failure keeps the previous version, skips the models that read it and the warehouse, and fails the run. WARN
checks (stuck orders) run after the build and never block.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from orders_pipeline.analytics import sql
from orders_pipeline.storage import layout
from orders_pipeline.analytics.warehouse import build_warehouse

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
    """A data test on a model: SQL (jinja, with ref/source/var) returning the offending rows; none means pass.
    An ERROR check blocks: it runs on the candidate model, and a failure keeps the previous version published."""

    asset: str
    name: str
    description: str
    sql: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        """The Dagster key of this check."""
        return dg.AssetCheckKey(dg.AssetKey(self.asset), self.name)

    @property
    def blocking(self) -> bool:
        """Whether a failure stops the model's publication and the models downstream of it."""
        return self.severity == dg.AssetCheckSeverity.ERROR

    @property
    def guard(self) -> sql.Guard:
        """The check as the build runs it on the candidate model."""
        return sql.Guard(self.name, self.sql)


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


def quarantined(column: str) -> str:
    """SQL: the row's `column` could not be decoded and was kept as null (it is listed in quarantined_fields)."""
    return f"regexp_matches(coalesce(quarantined_fields, ''), '(^|; ){column}=')"


CHECKS: list[SqlCheck] = [
    unique("stg_orders", "amazon_order_id"),
    SqlCheck(
        "stg_orders",
        "not_null_keys",
        "amazon_order_id and order_status are never null; purchase_date and last_update_date only when quarantined",
        f"""
        select amazon_order_id, order_status, purchase_date, last_update_date, quarantined_fields
        from {{{{ ref('stg_orders') }}}}
        where amazon_order_id is null or order_status is null
            or (purchase_date is null and not {quarantined('purchase_date')})
            or (last_update_date is null and not {quarantined('last_update_date')})
        """,
    ),
    unique("stg_order_items", "amazon_order_id", "order_item_id"),
    not_null("stg_order_items", "amazon_order_id", "order_item_id"),
    non_negative("stg_order_items", "quantity_ordered", "quantity_shipped"),
    SqlCheck(
        "stg_order_items",
        "current_orders_have_items",
        "every current order has its lines: the items of its current version landed (same dt)",
        """
        select orders.amazon_order_id, orders.dt, orders.order_status
        from {{ ref('stg_orders') }} as orders
        anti join {{ ref('stg_order_items') }} as items on orders.amazon_order_id = items.amazon_order_id
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
    SqlCheck(
        "sku_daily_sales",
        "reconciles_with_stg_order_items",
        "units and revenue per (purchase_day, currency) equal the sums over the lines of orders not Canceled, "
        "the null day of quarantined purchase dates included",
        """
        with
        by_sku as (
            select purchase_day, currency, sum(units_ordered) as units, sum(units_shipped) as shipped,
                sum(revenue) as revenue
            from {{ ref('sku_daily_sales') }} group by all
        ),
        by_line as (
            select purchase_day, currency_code as currency, sum(quantity_ordered) as units,
                sum(quantity_shipped) as shipped, coalesce(sum(item_price_amount), 0) as revenue
            from {{ ref('stg_order_items') }} where order_status is distinct from 'Canceled' group by all
        )
        select
            coalesce(by_sku.purchase_day, by_line.purchase_day) as purchase_day,
            coalesce(by_sku.currency, by_line.currency) as currency,
            by_sku.units as sku_units, by_line.units as line_units,
            by_sku.shipped as sku_shipped, by_line.shipped as line_shipped,
            by_sku.revenue as sku_revenue, by_line.revenue as line_revenue
        from by_sku
        full outer join by_line
            on by_sku.purchase_day is not distinct from by_line.purchase_day
            and by_sku.currency is not distinct from by_line.currency
        where by_sku.units is distinct from by_line.units or by_sku.shipped is distinct from by_line.shipped
            or by_sku.revenue is distinct from by_line.revenue
        """,
    ),
    unique(
        "sales_by_channel",
        "purchase_day", "purchase_day_local", "marketplace_timezone", "sales_channel", "fulfillment_channel", "currency",
    ),
    SqlCheck(
        "sales_by_channel",
        "reconciles_with_sku_daily_sales",
        "revenue and units per (purchase_day, currency) equal the sums over sku_daily_sales, the null day included",
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
            on by_channel.purchase_day is not distinct from by_sku.purchase_day
            and by_channel.currency is not distinct from by_sku.currency
        where by_channel.revenue is distinct from by_sku.revenue or by_channel.units is distinct from by_sku.units
        """,
    ),
    unique("sku_sales_trends", "seller_sku", "currency", "day"),
    SqlCheck(
        "sku_sales_trends",
        "reconciles_with_sku_daily_sales",
        "units per (seller_sku, currency, day) equal the sums over sku_daily_sales on the same kind of day (local, or "
        "UTC with var trend_utc_days), its days known",
        """
        with
        trends as (
            select seller_sku, currency, day, units_ordered as units
            from {{ ref('sku_sales_trends') }} where units_ordered <> 0
        ),
        daily as (
            select seller_sku, currency, {{ 'purchase_day' if var('trend_utc_days', false) else 'purchase_day_local' }} as day,
                sum(units_ordered) as units
            from {{ ref('sku_daily_sales') }} where purchase_day is not null
            group by all having sum(units_ordered) <> 0
        )
        select
            coalesce(trends.seller_sku, daily.seller_sku) as seller_sku,
            coalesce(trends.currency, daily.currency) as currency,
            coalesce(trends.day, daily.day) as day,
            trends.units as trend_units, daily.units as daily_units
        from trends
        full outer join daily
            on trends.seller_sku is not distinct from daily.seller_sku
            and trends.currency is not distinct from daily.currency
            and trends.day = daily.day
        where trends.units is distinct from daily.units
        """,
    ),
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


def _check_result(check: SqlCheck, failing: Any) -> dg.AssetCheckResult:
    """The Dagster result of a check from its failing rows (a DataFrame)."""
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
    check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description, blocking=c.blocking) for c in CHECKS],
    can_subset=True,
    pool=ANALYTICS_POOL,
)
def analytics_models(context: dg.AssetExecutionContext, config: AnalyticsConfig) -> Iterator[object]:
    """Build the selected SQL models in dependency order, each published only when its blocking checks pass on it,
    run the other checks, and refresh the warehouse unless a model was held back."""
    data_dir = Path(config.data_dir) if config.data_dir else layout.data_dir()
    selected = {key.path[-1] for key in context.selected_asset_keys}
    models = [name for name in PROJECT.order if name in selected]
    selected_checks = [check for check in CHECKS if check.key in context.selected_asset_check_keys]
    guards = {name: [check for check in selected_checks if check.blocking and check.asset == name] for name in models}
    built: set[str] = set()
    with sql.Build(PROJECT, data_dir, config.vars, full_refresh=config.full_refresh) as build:
        runs = build.run(
            models,
            reads=[check.sql for check in selected_checks],
            guards={name: [check.guard for check in checks] for name, checks in guards.items()},
        )
        for result in runs:
            if result.rejected_by:
                context.log.error(_rejected_line(result, build.data_dir))
            else:
                built.add(result.name)
                context.log.info(_built_line(result))
                yield dg.MaterializeResult(asset_key=result.name, metadata=_model_metadata(result, build.data_dir))
            for check in guards[result.name]:
                yield _check_result(check, result.checks[check.name])
        held_back = [name for name in models if name not in built]
        if held_back:
            context.log.error(f"not published (a blocking check failed on them or on a model they read), and the "
                              f"warehouse not rebuilt: {', '.join(held_back)}")
        for check in selected_checks:
            if check not in guards.get(check.asset, []) and check.asset not in held_back:
                yield _check_result(check, build.query(check.sql, label=f"check {check.asset}.{check.name}"))
    if WAREHOUSE_KEY in context.selected_asset_keys and not held_back:
        path, relations = build_warehouse(data_dir, PROJECT, config.vars)
        yield dg.MaterializeResult(asset_key=WAREHOUSE_KEY, metadata=_warehouse_metadata(path, relations))


def _rejected_line(result: sql.ModelResult, data_dir: Path) -> str:
    """One line: which blocking checks stopped the model, and what stays published instead."""
    model = PROJECT.models[result.name]
    failed = ", ".join(f"{name} ({len(result.checks[name])} failing rows)" for name in result.rejected_by)
    kept = f"{model.output_path(data_dir)} keeps the previous build" if model.is_published else "its kept table stays as it was"
    return f"{result.name}: blocking check {failed}; {kept}, and the models that read it are not built"


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
