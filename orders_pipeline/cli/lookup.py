"""One order's story from the stored raw tables: every version seen, and the items of its latest version.

Both raw layouts are read (`dt=D` as account 'default', `account=NAME/dt=D`), and every row names its account: an
order id may be held by several seller accounts, so `account` narrows the lookup to one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from orders_pipeline.analytics.raw_tables import SOURCES

HISTORY_COLUMNS = ("dt", "last_update_date", "order_status", "number_of_items_shipped", "number_of_items_unshipped")
ORDER_COLUMNS = (
    "purchase_date", "sales_channel", "fulfillment_channel", "marketplace_id",
    "order_total_amount", "order_total_currency_code", "latest_ship_date",
)
ITEM_COLUMNS = ("order_item_id", "seller_sku", "asin", "quantity_ordered", "quantity_shipped", "item_price_amount", "item_price_currency_code")


def order_versions(root: Path, amazon_order_id: str, account: str | None = None) -> list[dict]:
    """Every stored version of the order across partitions (of one account when given), by account and oldest first
    (empty when it was never seen)."""
    columns = ", ".join(dict.fromkeys(("account", *HISTORY_COLUMNS, *ORDER_COLUMNS)))
    return _rows(
        root, "orders",
        f"select {columns} from {{relation}} where amazon_order_id = $id and ($account is null or account = $account) "
        "order by account, last_update_date nulls first, dt",  # unreadable dates are the oldest
        {"id": amazon_order_id, "account": account},
    )


def order_items(
    root: Path, amazon_order_id: str, day: str, version: datetime | None, account: str | None = None
) -> list[dict]:
    """The items stored with one version of the order (its last_update_date) in partition `day` (of one account when
    given)."""
    return _rows(
        root, "order_items",
        f"select {', '.join(ITEM_COLUMNS)}, account from {{relation}} where amazon_order_id = $id "
        "and dt = cast($day as date) and order_last_update_date is not distinct from $version "
        "and ($account is null or account = $account) order by account, order_item_id",
        {"id": amazon_order_id, "day": day, "version": version, "account": account},
    )


def _rows(root: Path, table: str, sql: str, parameters: dict) -> list[dict]:
    """The rows of `sql` over the raw table (named `{relation}` in it); none when the table has no partition."""
    source = SOURCES[("raw", table)]
    if not source.has_data(root):
        return []
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        cursor = con.execute(sql.format(relation=source.relation(root)), parameters)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
