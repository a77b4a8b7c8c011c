"""A short printed tour of the marts: best and worst sellers, sales by channel, stuck orders (per seller account)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orders_pipeline.storage.layout import mart_path

_SKU_UNITS = """
    select account, seller_sku, sum(units_ordered)::bigint as units, sum(orders)::bigint as orders
    from read_parquet($sku_daily_sales)
    group by account, seller_sku
"""

_SECTIONS = {
    "Best-selling SKUs (units ordered, all days)": "from (" + _SKU_UNITS + ") order by units desc, account, seller_sku limit 5",
    "Slowest-selling SKUs that sold at all": "from (" + _SKU_UNITS + ") order by units, account, seller_sku limit 5",
    "Sales by channel (revenue per currency, never added across currencies)": """
        select account, sales_channel, fulfillment_channel, currency,
               sum(orders)::bigint as orders, sum(units_ordered)::bigint as units, sum(revenue) as revenue
        from read_parquet($sales_by_channel)
        group by all order by account, currency, revenue desc
    """,
    "Stuck orders, longest first": """
        select account, amazon_order_id, order_status, round(hours_in_status) as hours_in_status, reason
        from read_parquet($stuck_orders)
        order by hours_in_status desc limit 5
    """,
}


def mart_summary(root: Path) -> str:
    """The tour as text, read from the mart Parquet files under `root`."""
    paths = {name: mart_path(root, name).as_posix() for name in ("sku_daily_sales", "sales_by_channel", "stuck_orders")}
    with duckdb.connect() as connection:
        sections = [f"{title}:\n{connection.sql(sql, params=_used(sql, paths))}" for title, sql in _SECTIONS.items()]
        stuck = connection.execute("select count(*) from read_parquet($path)", {"path": paths["stuck_orders"]}).fetchone()[0]
    return "\n".join(sections) + f"{stuck} orders are stuck in all; see them with: orders-pipeline query \"from stuck_orders\"\n"


def _used(sql: str, paths: dict[str, str]) -> dict[str, str]:
    """The named parameters a query refers to (DuckDB refuses unused ones)."""
    return {name: path for name, path in paths.items() if f"${name}" in sql}
