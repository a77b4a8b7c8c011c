"""One order's story from the stored raw tables: every version seen, and the items of its latest version."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb

from orders_pipeline.storage.layout import partition_dir

HISTORY_COLUMNS = ("dt", "last_update_date", "order_status", "number_of_items_shipped", "number_of_items_unshipped")
ORDER_COLUMNS = (
    "purchase_date", "sales_channel", "fulfillment_channel", "marketplace_id",
    "order_total_amount", "order_total_currency_code", "latest_ship_date",
)
ITEM_COLUMNS = ("order_item_id", "seller_sku", "asin", "quantity_ordered", "quantity_shipped", "item_price_amount", "item_price_currency_code")


def order_versions(root: Path, amazon_order_id: str, account: str | None = None) -> list[dict]:
    """Every stored version of the order across partitions (of `account`'s folders, when given), oldest first (empty
    when it was never seen)."""
    columns = ", ".join(dict.fromkeys((*HISTORY_COLUMNS, *ORDER_COLUMNS)))
    base = partition_dir(root, "orders", date.min, account).parent
    return _rows(
        f"select {columns} from read_parquet($glob, hive_partitioning = true, union_by_name = true) "
        "where amazon_order_id = $id order by last_update_date nulls first, dt",  # unreadable dates are the oldest
        {"glob": str(base / "*" / "*.parquet"), "id": amazon_order_id},
        base,
    )


def order_items(root: Path, amazon_order_id: str, day: str, version: datetime | None, account: str | None = None) -> list[dict]:
    """The items stored with one version of the order (its last_update_date) in partition `day` (of `account`)."""
    folder = partition_dir(root, "order_items", date.fromisoformat(day), account)
    return _rows(
        f"select {', '.join(ITEM_COLUMNS)} from read_parquet($path) where amazon_order_id = $id "
        "and order_last_update_date is not distinct from $version order by order_item_id",
        {"path": str(folder / "*.parquet"), "id": amazon_order_id, "version": version},
        folder,
    )


def _rows(sql: str, parameters: dict, required: Path) -> list[dict]:
    if not any(required.rglob("*.parquet")):
        return []
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        cursor = con.execute(sql, parameters)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
