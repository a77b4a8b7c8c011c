"""The data tests of the SQL models: SQL returning offending rows, as Dagster asset checks (ERROR ones block)."""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from orders_pipeline.analytics.build import Guard


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
    def guard(self) -> Guard:
        """The check as the build runs it on the candidate model."""
        return Guard(self.name, self.sql)


def unique(model: str, *columns: str) -> SqlCheck:
    """A check that the account and the columns form a unique key of the model (named after the columns)."""
    cols = ", ".join(("account", *columns))
    return SqlCheck(
        model,
        "unique_" + "_".join(columns) if len(columns) < 3 else "unique_grain",
        f"({cols}) is unique",
        f"select {cols}, count(*) as n_rows from {{{{ ref('{model}') }}}} group by all having count(*) > 1",
    )


def not_null(model: str, *columns: str) -> SqlCheck:
    """A check that the key columns are never null."""
    return _no_column_where(model, "not_null_keys", columns, "is null", "are never null")


def non_negative(model: str, *columns: str) -> SqlCheck:
    """A check that the quantity columns are never negative."""
    return _no_column_where(model, "non_negative_quantities", columns, "< 0", "are never negative")


def _no_column_where(model: str, name: str, columns: tuple[str, ...], predicate: str, rule: str) -> SqlCheck:
    """A check failing on the rows where any of `columns` meets `predicate` (e.g. `is null`)."""
    condition = " or ".join(f"{c} {predicate}" for c in columns)
    return SqlCheck(
        model, name, f"{', '.join(columns)} {rule}", f"select * from {{{{ ref('{model}') }}}} where {condition}"
    )


def quarantined(column: str) -> str:
    """SQL: the row's `column` could not be decoded and was kept as null (it is listed in quarantined_fields)."""
    return f"regexp_matches(coalesce(quarantined_fields, ''), '(^|; ){column}=')"


CHECKS: list[SqlCheck] = [
    unique("stg_orders", "amazon_order_id"),
    SqlCheck(
        "stg_orders",
        "not_null_keys",
        "account, amazon_order_id and order_status are never null; purchase_date and last_update_date only when "
        "quarantined",
        f"""
        select account, amazon_order_id, order_status, purchase_date, last_update_date, quarantined_fields
        from {{{{ ref('stg_orders') }}}}
        where account is null or amazon_order_id is null or order_status is null
            or (purchase_date is null and not {quarantined('purchase_date')})
            or (last_update_date is null and not {quarantined('last_update_date')})
        """,
    ),
    unique("stg_order_items", "amazon_order_id", "order_item_id"),
    not_null("stg_order_items", "account", "amazon_order_id", "order_item_id"),
    non_negative("stg_order_items", "quantity_ordered", "quantity_shipped"),
    SqlCheck(
        "stg_order_items",
        "current_orders_have_items",
        "every current order has its lines: the items of its current version landed (same dt)",
        """
        select orders.account, orders.amazon_order_id, orders.dt, orders.order_status
        from {{ ref('stg_orders') }} as orders
        anti join {{ ref('stg_order_items') }} as items
            on orders.account = items.account and orders.amazon_order_id = items.amazon_order_id
        """,
    ),
    unique("stg_order_status_history", "amazon_order_id", "version_number"),
    SqlCheck(
        "stg_order_status_history",
        "one_current_version",
        "every order has exactly one current version, and it is the version stg_orders keeps",
        """
        select orders.account, orders.amazon_order_id, count(history.amazon_order_id) as current_versions
        from {{ ref('stg_orders') }} as orders
        left join {{ ref('stg_order_status_history') }} as history
            on orders.account = history.account
            and orders.amazon_order_id = history.amazon_order_id
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
        "units and revenue per (account, purchase_day, currency) equal the sums over the lines of orders not "
        "Canceled, the null day of quarantined purchase dates included",
        """
        with
        by_sku as (
            select account, purchase_day, currency, sum(units_ordered) as units, sum(units_shipped) as shipped,
                sum(revenue) as revenue
            from {{ ref('sku_daily_sales') }} group by all
        ),
        by_line as (
            select account, purchase_day, currency_code as currency, sum(quantity_ordered) as units,
                sum(quantity_shipped) as shipped, coalesce(sum(item_price_amount), 0) as revenue
            from {{ ref('stg_order_items') }} where order_status is distinct from 'Canceled' group by all
        )
        select
            coalesce(by_sku.account, by_line.account) as account,
            coalesce(by_sku.purchase_day, by_line.purchase_day) as purchase_day,
            coalesce(by_sku.currency, by_line.currency) as currency,
            by_sku.units as sku_units, by_line.units as line_units,
            by_sku.shipped as sku_shipped, by_line.shipped as line_shipped,
            by_sku.revenue as sku_revenue, by_line.revenue as line_revenue
        from by_sku
        full outer join by_line
            on by_sku.account = by_line.account
            and by_sku.purchase_day is not distinct from by_line.purchase_day
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
        "revenue and units per (account, purchase_day, currency) equal the sums over sku_daily_sales, the null day "
        "included",
        """
        with
        by_channel as (
            select account, purchase_day, currency, sum(revenue) as revenue, sum(units_ordered) as units
            from {{ ref('sales_by_channel') }} group by all
        ),
        by_sku as (
            select account, purchase_day, currency, sum(revenue) as revenue, sum(units_ordered) as units
            from {{ ref('sku_daily_sales') }} group by all
        )
        select
            coalesce(by_channel.account, by_sku.account) as account,
            coalesce(by_channel.purchase_day, by_sku.purchase_day) as purchase_day,
            coalesce(by_channel.currency, by_sku.currency) as currency,
            by_channel.revenue as channel_revenue, by_sku.revenue as sku_revenue,
            by_channel.units as channel_units, by_sku.units as sku_units
        from by_channel
        full outer join by_sku
            on by_channel.account = by_sku.account
            and by_channel.purchase_day is not distinct from by_sku.purchase_day
            and by_channel.currency is not distinct from by_sku.currency
        where by_channel.revenue is distinct from by_sku.revenue or by_channel.units is distinct from by_sku.units
        """,
    ),
    unique("sku_sales_trends", "seller_sku", "currency", "day"),
    SqlCheck(
        "sku_sales_trends",
        "reconciles_with_sku_daily_sales",
        "units per (account, seller_sku, currency, day) equal the sums over sku_daily_sales on the same kind of day "
        "(local, or UTC with var trend_utc_days), its days known",
        """
        with
        trends as (
            select account, seller_sku, currency, day, units_ordered as units
            from {{ ref('sku_sales_trends') }} where units_ordered <> 0
        ),
        daily as (
            select account, seller_sku, currency,
                {{ 'purchase_day' if var('trend_utc_days', false) else 'purchase_day_local' }} as day,
                sum(units_ordered) as units
            from {{ ref('sku_daily_sales') }} where purchase_day is not null
            group by all having sum(units_ordered) <> 0
        )
        select
            coalesce(trends.account, daily.account) as account,
            coalesce(trends.seller_sku, daily.seller_sku) as seller_sku,
            coalesce(trends.currency, daily.currency) as currency,
            coalesce(trends.day, daily.day) as day,
            trends.units as trend_units, daily.units as daily_units
        from trends
        full outer join daily
            on trends.account = daily.account
            and trends.seller_sku is not distinct from daily.seller_sku
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
        "select account, amazon_order_id, order_status, hours_in_status, reason from {{ ref('stuck_orders') }}"
        " order by hours_in_status desc",
        severity=dg.AssetCheckSeverity.WARN,
    ),
    unique("sku_stuck_summary", "seller_sku", "asin"),
    unique("sku_trend_anomalies", "seller_sku", "day"),
]


def check_result(check: SqlCheck, failing: Any) -> dg.AssetCheckResult:
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
