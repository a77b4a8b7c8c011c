"""The SQL models on small hand-built raw data (real Parquet, real DuckDB), with hand-computed expectations.

Two datasets, both written as hive-partitioned Parquet with the contract's Arrow schemas:

* `SHOP`: eight orders over four partitions (2024-02-20, 03-01, 03-02, 03-03), USD and CAD, a Canceled order,
  unpriced Pending lines, an order that goes Pending -> Unshipped -> Shipped over three partitions (it must be
  counted once), and three stuck orders. as_of = the greatest last_update_date = 2024-03-03 12:00Z (O7 v3).
* `SERIES`: 60 days (2024-01-01 .. 2024-02-29) of one order per SKU and day, for trends and anomalies.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orders_pipeline.analytics.project import load_project
from orders_pipeline.analytics.build import Build, build_models
from orders_pipeline.defs.model_checks import CHECKS
from orders_pipeline.cli.lookup import order_versions
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.analytics.warehouse import build_warehouse

US, CA, UK, JP = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P", "A1VC38T7YXB528"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def order(oid, lud, status, purchase, channel, fulfillment, marketplace, total=None, currency=None, latest_ship=None):
    return {
        "amazon_order_id": oid,
        "last_update_date": ts(lud),
        "order_status": status,
        "purchase_date": ts(purchase),
        "sales_channel": channel,
        "fulfillment_channel": fulfillment,
        "marketplace_id": marketplace,
        "order_total_amount": Decimal(total) if total is not None else None,
        "order_total_currency_code": currency,
        "latest_ship_date": ts(latest_ship) if latest_ship else None,
        "is_quarantined": False,
    }


def item(oid, lud, item_id, sku, qty, shipped, price=None, currency=None):
    return {
        "amazon_order_id": oid,
        "order_last_update_date": ts(lud),
        "order_item_id": item_id,
        "seller_sku": sku,
        "asin": "ASIN-" + sku,
        "title": f"Product {sku}",
        "quantity_ordered": qty,
        "quantity_shipped": shipped,
        "item_price_amount": Decimal(price) if price is not None else None,
        "item_price_currency_code": currency,
        "is_quarantined": False,
    }


def write_raw(data_dir: Path, versions: list[tuple[str, dict, list[dict]]]) -> None:
    """Write (dt, order row, item rows) versions as orders/dt=D/part-0.parquet and order_items/dt=D/part-0.parquet."""
    by_dt: dict[str, tuple[list, list]] = {}
    for dt, order_row, item_rows in versions:
        orders, items = by_dt.setdefault(dt, ([], []))
        orders.append(order_row)
        items.extend(item_rows)
    for dt, (orders, items) in by_dt.items():
        for table, rows, schema in (("orders", orders, ORDERS_SCHEMA), ("order_items", items, ORDER_ITEMS_SCHEMA)):
            folder = data_dir / table / f"dt={dt}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-0.parquet")


def shop_versions() -> list[tuple[str, dict, list[dict]]]:
    v = []
    # O1: Pending (no price) -> Unshipped -> Shipped over three partitions; current = v3 (03-03).
    v.append(("2024-03-01", order("O1", "2024-03-01T10:05", "Pending", "2024-03-01T10:00", "Amazon.com", "AFN", US),
              [item("O1", "2024-03-01T10:05", "O1-1", "SKU-A", 2, 0)]))
    v.append(("2024-03-02", order("O1", "2024-03-02T09:00", "Unshipped", "2024-03-01T10:00", "Amazon.com", "AFN", US,
                                  "40.00", "USD", "2024-03-04T00:00"),
              [item("O1", "2024-03-02T09:00", "O1-1", "SKU-A", 2, 0, "40.00", "USD")]))
    v.append(("2024-03-03", order("O1", "2024-03-03T08:00", "Shipped", "2024-03-01T10:00", "Amazon.com", "AFN", US,
                                  "40.00", "USD", "2024-03-04T00:00"),
              [item("O1", "2024-03-03T08:00", "O1-1", "SKU-A", 2, 2, "40.00", "USD")]))
    # O2: Shipped, two SKUs; the raw sales channel carries Amazon's trailing space.
    v.append(("2024-03-01", order("O2", "2024-03-01T20:00", "Shipped", "2024-03-01T15:00", "Amazon.com ", "MFN", US,
                                  "50.00", "USD"),
              [item("O2", "2024-03-01T20:00", "O2-1", "SKU-A", 1, 1, "20.00", "USD"),
               item("O2", "2024-03-01T20:00", "O2-2", "SKU-B", 2, 2, "30.00", "USD")]))
    # O3: Canadian order in CAD.
    v.append(("2024-03-02", order("O3", "2024-03-02T18:00", "Shipped", "2024-03-02T11:00", "Amazon.ca", "AFN", CA,
                                  "25.00", "CAD"),
              [item("O3", "2024-03-02T18:00", "O3-1", "SKU-A", 1, 1, "25.00", "CAD")]))
    # O4: Unshipped, then Canceled: excluded everywhere.
    v.append(("2024-03-02", order("O4", "2024-03-02T12:30", "Unshipped", "2024-03-02T12:00", "Amazon.com", "MFN", US,
                                  "75.00", "USD", "2024-03-05T00:00"),
              [item("O4", "2024-03-02T12:30", "O4-1", "SKU-B", 5, 0, "75.00", "USD")]))
    v.append(("2024-03-03", order("O4", "2024-03-03T07:00", "Canceled", "2024-03-02T12:00", "Amazon.com", "MFN", US),
              [item("O4", "2024-03-03T07:00", "O4-1", "SKU-B", 5, 0, "75.00", "USD")]))
    # O5: Pending for 2 h, no price: counted in units, unpriced, not stuck.
    v.append(("2024-03-03", order("O5", "2024-03-03T10:00", "Pending", "2024-03-03T10:00", "Amazon.com", "AFN", US),
              [item("O5", "2024-03-03T10:00", "O5-1", "SKU-B", 1, 0)]))
    # O6: Pending since 03-01 06:00 -> 54 h at as_of: stuck.
    v.append(("2024-03-01", order("O6", "2024-03-01T06:00", "Pending", "2024-03-01T06:00", "Amazon.com", "MFN", US),
              [item("O6", "2024-03-01T06:00", "O6-1", "SKU-C", 4, 0)]))
    # O7: Pending -> Unshipped (03-02 08:00) -> Unshipped again (03-03 12:00, = as_of); past latest_ship_date 03-03 00:00.
    v.append(("2024-03-01", order("O7", "2024-03-01T09:00", "Pending", "2024-03-01T09:00", "Amazon.ca", "MFN", CA),
              [item("O7", "2024-03-01T09:00", "O7-1", "SKU-C", 2, 0)]))
    for dt, lud in (("2024-03-02", "2024-03-02T08:00"), ("2024-03-03", "2024-03-03T12:00")):
        v.append((dt, order("O7", lud, "Unshipped", "2024-03-01T09:00", "Amazon.ca", "MFN", CA, "15.00", "CAD",
                            "2024-03-03T00:00"),
                  [item("O7", lud, "O7-1", "SKU-C", 2, 0, "15.00", "CAD")]))
    # O8: pre-order waiting since 02-20 00:00 -> 300 h (12.5 days) at as_of: unchanged for more than 7 days.
    v.append(("2024-02-20", order("O8", "2024-02-20T00:00", "PendingAvailability", "2024-02-20T00:00", "Amazon.com",
                                  "MFN", US, "10.00", "USD", "2024-03-10T00:00"),
              [item("O8", "2024-02-20T00:00", "O8-1", "SKU-D", 1, 0, "10.00", "USD")]))
    return v


SERIES_START = date(2024, 1, 1)


def series_units(sku: str, day_number: int) -> int:
    """Units per day (day 1 = 2024-01-01 .. day 60 = 2024-02-29)."""
    if sku == "ANOM":  # 1, 3, 1, 3 ... then a spike of 30 on day 60
        return 30 if day_number == 60 else (1 if day_number % 2 else 3)
    if sku == "DROP":  # 9, 11, 9, 11 ... then nothing on day 60
        return 0 if day_number == 60 else (9 if day_number % 2 else 11)
    return 2  # SHIFT: 2 a day, MFN on days 1..32, AFN on days 33..60


def series_versions() -> list[tuple[str, dict, list[dict]]]:
    v = []
    for n in range(1, 61):
        day = SERIES_START + timedelta(days=n - 1)
        for sku in ("ANOM", "DROP", "SHIFT"):
            units = series_units(sku, n)
            if not units:
                continue
            oid, lud = f"{sku}-{n}", f"{day}T13:00"
            fulfillment = "MFN" if sku == "SHIFT" and n <= 32 else "AFN"
            price = f"{units * 10}.00"
            v.append((str(day), order(oid, lud, "Shipped", f"{day}T12:00", "Amazon.com", fulfillment, US, price, "USD"),
                      [item(oid, lud, oid + "-1", sku, units, units, price, "USD")]))
    return v


def query(data_dir: Path, model: str, sql_text: str = "select * from m") -> list[dict]:
    """Rows of a model: a table model from its Parquet file, a view model (staging, never written) through the
    warehouse file's view of it, as a user would query it."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    if not load_project().models[model].is_published:
        path, _ = build_warehouse(data_dir, load_project())
        con.execute(f"attach '{path}' as warehouse (read_only)")
        con.execute(f'create view m as select * from warehouse."{model}"')
    else:
        con.execute(f"create view m as select * from read_parquet('{data_dir / 'marts' / model}.parquet')")
    cursor = con.execute(sql_text)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("shop")
    write_raw(data_dir, shop_versions())
    build_models(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("series")
    write_raw(data_dir, series_versions())
    build_models(data_dir)
    return data_dir


# --------------------------------------------------------------------------------------------- staging


def test_flat_partitions_read_as_the_default_account_in_every_model_and_raw_view(shop, series):
    for name in load_project().order:
        data_dir = series if name == "sku_trend_anomalies" else shop  # the shop flags no anomaly
        assert query(data_dir, name, "select distinct account from m") == [{"account": "default"}], name
    path, _ = build_warehouse(shop, load_project())
    with duckdb.connect(str(path), read_only=True) as con:
        for table in ("orders", "order_items"):
            assert con.execute(f"select distinct account from {table}").fetchall() == [("default",)]


def test_stg_orders_keeps_the_latest_version_once(shop):
    rows = {r["amazon_order_id"]: r for r in query(shop, "stg_orders")}
    assert sorted(rows) == [f"O{i}" for i in range(1, 9)]
    assert (rows["O1"]["order_status"], rows["O1"]["dt"]) == ("Shipped", date(2024, 3, 3))
    assert rows["O4"]["order_status"] == "Canceled"
    assert rows["O2"]["sales_channel"] == "Amazon.com"  # trailing space trimmed
    assert rows["O1"]["purchase_day"] == date(2024, 3, 1)


def test_stg_order_items_are_the_current_versions_items(shop):
    rows = query(shop, "stg_order_items", "select * from m order by order_item_id")
    # one current item per order, two for O2: 9 lines (O1's three versions contribute only v3's line)
    assert [r["order_item_id"] for r in rows] == ["O1-1", "O2-1", "O2-2", "O3-1", "O4-1", "O5-1", "O6-1", "O7-1", "O8-1"]
    o1 = rows[0]
    assert (o1["quantity_shipped"], o1["item_price_amount"], o1["dt"]) == (2, Decimal("40.00"), date(2024, 3, 3))
    by_id = {r["order_item_id"]: r for r in rows}
    # unpriced Pending lines take the currency of their marketplace's priced lines (US -> USD)
    assert (by_id["O5-1"]["is_unpriced"], by_id["O5-1"]["currency_code"]) == (True, "USD")
    assert by_id["O6-1"]["currency_code"] == "USD"


def test_status_history_has_every_version_in_order(shop):
    rows = query(shop, "stg_order_status_history", "select * from m order by amazon_order_id, version_number")
    assert len(rows) == 13  # O1 3 + O2 1 + O3 1 + O4 2 + O5 1 + O6 1 + O7 3 + O8 1
    o1 = [(r["order_status"], r["previous_status"], r["valid_from"], r["valid_to"]) for r in rows if r["amazon_order_id"] == "O1"]
    assert o1 == [
        ("Pending", None, ts("2024-03-01T10:05"), ts("2024-03-02T09:00")),
        ("Unshipped", "Pending", ts("2024-03-02T09:00"), ts("2024-03-03T08:00")),
        ("Shipped", "Unshipped", ts("2024-03-03T08:00"), None),
    ]
    o7 = [(r["order_status"], r["is_status_change"], r["is_current"]) for r in rows if r["amazon_order_id"] == "O7"]
    # the second Unshipped version is no status change (stuck_orders' status_since stays 03-02 08:00)
    assert o7 == [("Pending", True, False), ("Unshipped", True, False), ("Unshipped", False, True)]


def quarantined_update(oid: str, status: str, purchase: str, price: str | None = None) -> tuple[dict, list[dict]]:
    """An order version whose last_update_date could not be decoded (kept as null and flagged), with its item."""
    row = order(oid, "2024-03-01T00:00", status, purchase, "Amazon.com", "AFN", US, price, "USD" if price else None)
    row.update(last_update_date=None, is_quarantined=True, quarantined_fields="last_update_date=2024-13-45T99:00:00Z")
    line = item(oid, "2024-03-01T00:00", f"{oid}-1", "SKU-Q", 1, 0, price, "USD" if price else None)
    line["order_last_update_date"] = None
    return row, [line]


def test_a_quarantined_last_update_date_is_the_oldest_version(tmp_path):
    # Q1: a bad Pending version landed on 03-01 and again, later, on 03-03; its one readable version is 03-02's
    # Unshipped. Q2: Pending since 03-01 06:00, with a bad Pending version on 03-02. Q3 sets as_of (03-03 12:00).
    # Q4 has a bad version only.
    purchase = "2024-03-01T05:00"
    write_raw(tmp_path, [
        ("2024-03-01", *quarantined_update("Q1", "Pending", purchase)),
        ("2024-03-02", order("Q1", "2024-03-02T09:00", "Unshipped", purchase, "Amazon.com", "AFN", US, "12.00", "USD",
                             "2024-03-05T00:00"),
         [item("Q1", "2024-03-02T09:00", "Q1-1", "SKU-Q", 1, 0, "12.00", "USD")]),
        ("2024-03-03", *quarantined_update("Q1", "Pending", purchase)),
        ("2024-03-01", order("Q2", "2024-03-01T06:00", "Pending", "2024-03-01T06:00", "Amazon.com", "MFN", US),
         [item("Q2", "2024-03-01T06:00", "Q2-1", "SKU-R", 1, 0)]),
        ("2024-03-02", *quarantined_update("Q2", "Pending", "2024-03-01T06:00")),
        ("2024-03-03", order("Q3", "2024-03-03T12:00", "Shipped", "2024-03-03T11:00", "Amazon.com", "AFN", US,
                             "5.00", "USD"),
         [item("Q3", "2024-03-03T12:00", "Q3-1", "SKU-S", 1, 1, "5.00", "USD")]),
        ("2024-03-02", *quarantined_update("Q4", "Pending", "2024-03-02T10:00")),
    ])
    build_models(tmp_path)

    orders = {r["amazon_order_id"]: r for r in query(tmp_path, "stg_orders")}
    assert (orders["Q1"]["order_status"], orders["Q1"]["last_update_date"], orders["Q1"]["dt"]) == (
        "Unshipped", ts("2024-03-02T09:00"), date(2024, 3, 2))
    (q1_item,) = query(tmp_path, "stg_order_items", "select * from m where amazon_order_id = 'Q1'")
    assert (q1_item["dt"], q1_item["item_price_amount"]) == (date(2024, 3, 2), Decimal("12.00"))
    history = query(tmp_path, "stg_order_status_history",
                    "select * from m where amazon_order_id = 'Q1' order by version_number")
    # the unreadable versions come first (oldest), in dt order; only the readable one is current
    assert [(r["dt"], r["valid_from"], r["valid_to"], r["is_current"]) for r in history] == [
        (date(2024, 3, 1), None, None, False),
        (date(2024, 3, 3), None, ts("2024-03-02T09:00"), False),
        (date(2024, 3, 2), ts("2024-03-02T09:00"), None, True),
    ]
    (sale,) = query(tmp_path, "sku_daily_sales", "select * from m where purchase_day = '2024-03-01' and seller_sku = 'SKU-Q'")
    assert (sale["revenue"], sale["unpriced_units"]) == (Decimal("12.00"), 0)
    # Q2's Pending began at an unknown time before 03-01 06:00: it counts from its first readable version
    stuck = {r["amazon_order_id"]: (r["status_since"], r["hours_in_status"]) for r in query(tmp_path, "stuck_orders")}
    assert stuck == {"Q2": (ts("2024-03-01T06:00"), 54.0)}
    # the order lookup agrees on the latest version, and so does the check that stg_orders keeps the current one
    assert [v["order_status"] for v in order_versions(tmp_path, "Q1")] == ["Pending", "Pending", "Unshipped"]
    (one_current,) = [check for check in CHECKS if check.name == "one_current_version"]
    with Build(load_project(), tmp_path) as build:
        assert build.query(one_current.sql).empty


# --------------------------------------------------------------------------------------------- marts


def test_sku_daily_sales(shop):
    got = {
        (str(r["purchase_day"]), r["marketplace_id"], r["sales_channel"], r["fulfillment_channel"], r["seller_sku"], r["currency"]):
        (r["orders"], r["units_ordered"], r["units_shipped"], r["revenue"], r["unpriced_units"], r["has_unpriced_lines"])
        for r in query(shop, "sku_daily_sales")
    }
    assert got == {
        ("2024-02-20", US, "Amazon.com", "MFN", "SKU-D", "USD"): (1, 1, 0, Decimal("10.00"), 0, False),   # O8
        ("2024-03-01", US, "Amazon.com", "AFN", "SKU-A", "USD"): (1, 2, 2, Decimal("40.00"), 0, False),   # O1 once
        ("2024-03-01", US, "Amazon.com", "MFN", "SKU-A", "USD"): (1, 1, 1, Decimal("20.00"), 0, False),   # O2
        ("2024-03-01", US, "Amazon.com", "MFN", "SKU-B", "USD"): (1, 2, 2, Decimal("30.00"), 0, False),   # O2
        ("2024-03-01", US, "Amazon.com", "MFN", "SKU-C", "USD"): (1, 4, 0, Decimal("0.00"), 4, True),     # O6 pending
        ("2024-03-01", CA, "Amazon.ca", "MFN", "SKU-C", "CAD"): (1, 2, 0, Decimal("15.00"), 0, False),    # O7
        ("2024-03-02", CA, "Amazon.ca", "AFN", "SKU-A", "CAD"): (1, 1, 1, Decimal("25.00"), 0, False),    # O3
        ("2024-03-03", US, "Amazon.com", "AFN", "SKU-B", "USD"): (1, 1, 0, Decimal("0.00"), 1, True),     # O5 pending
    }  # O4 (Canceled) appears nowhere


def test_an_order_with_two_lines_of_one_sku_counts_once(tmp_path):
    lud = "2024-03-01T12:00"
    write_raw(tmp_path, [
        ("2024-03-01", order("R1", lud, "Shipped", "2024-03-01T10:00", "Amazon.com", "AFN", US, "30.00", "USD"),
         [item("R1", lud, "R1-1", "SKU-A", 1, 1, "10.00", "USD"), item("R1", lud, "R1-2", "SKU-A", 2, 2, "20.00", "USD")]),
        ("2024-03-01", order("R2", lud, "Shipped", "2024-03-01T11:00", "Amazon.com", "AFN", US, "10.00", "USD"),
         [item("R2", lud, "R2-1", "SKU-A", 1, 1, "10.00", "USD")]),
    ])
    build_models(tmp_path, select=["stg_orders", "stg_order_items", "sku_daily_sales", "sales_by_channel"])
    (sku_day,) = query(tmp_path, "sku_daily_sales")
    assert (sku_day["orders"], sku_day["units_ordered"], sku_day["revenue"]) == (2, 4, Decimal("40.00"))
    (channel_day,) = query(tmp_path, "sales_by_channel")
    assert (channel_day["orders"], channel_day["units_ordered"], channel_day["revenue"]) == (2, 4, Decimal("40.00"))
    types = {name: kind for name, kind, *_ in duckdb.sql(f"describe from '{tmp_path}/marts/sku_daily_sales.parquet'").fetchall()}
    assert types["orders"] == "BIGINT"


def test_sales_by_channel_never_adds_currencies(shop):
    got = {
        (str(r["purchase_day"]), str(r["purchase_day_local"]), r["sales_channel"], r["fulfillment_channel"], r["currency"]):
        (r["orders"], r["units_ordered"], r["units_shipped"], r["revenue"], r["unpriced_units"])
        for r in query(shop, "sales_by_channel")
    }
    assert {r["marketplace_timezone"] for r in query(shop, "sales_by_channel")} == {"America/Los_Angeles"}
    assert got == {
        ("2024-02-20", "2024-02-19", "Amazon.com", "MFN", "USD"): (1, 1, 0, Decimal("10.00"), 0),  # O8 at 00:00Z
        ("2024-03-01", "2024-03-01", "Amazon.com", "AFN", "USD"): (1, 2, 2, Decimal("40.00"), 0),
        ("2024-03-01", "2024-03-01", "Amazon.com", "MFN", "USD"): (1, 3, 3, Decimal("50.00"), 0),  # O2: 1 + 2 units
        ("2024-03-01", "2024-02-29", "Amazon.com", "MFN", "USD"): (1, 4, 0, Decimal("0.00"), 4),   # O6 at 06:00Z
        ("2024-03-01", "2024-03-01", "Amazon.ca", "MFN", "CAD"): (1, 2, 0, Decimal("15.00"), 0),
        ("2024-03-02", "2024-03-02", "Amazon.ca", "AFN", "CAD"): (1, 1, 1, Decimal("25.00"), 0),
        ("2024-03-03", "2024-03-03", "Amazon.com", "AFN", "USD"): (1, 1, 0, Decimal("0.00"), 1),
    }


def test_sku_sales_trends_on_the_shop(shop):
    rows = query(shop, "sku_sales_trends", "select * from m order by seller_sku, currency, day")
    # days are Pacific (the US and CA marketplaces' Seller Central days): O8 (02-20 00:00Z) sold on 02-19 and O6
    # (03-01 06:00Z) on 02-29. Dense series from each (SKU, currency)'s first sale to 03-03: A-USD 3, A-CAD 2,
    # B-USD 3, C-CAD 3, C-USD 4, D-USD 14
    assert len(rows) == 29
    by_key = {(r["seller_sku"], r["currency"], str(r["day"])): r for r in rows}
    a = by_key[("SKU-A", "USD", "2024-03-01")]
    assert (a["units_ordered"], a["orders"], a["revenue"]) == (3, 2, Decimal("60.00"))  # O1 (2) + O2 (1)
    a3 = by_key[("SKU-A", "USD", "2024-03-03")]
    assert (a3["units_ordered"], a3["units_ma_7d"], a3["units_ma_28d"]) == (0, pytest.approx(3 / 7), pytest.approx(3 / 28))
    assert by_key[("SKU-C", "USD", "2024-02-29")]["units_ordered"] == 4
    d7, d8 = by_key[("SKU-D", "USD", "2024-02-25")], by_key[("SKU-D", "USD", "2024-02-26")]
    assert d7["units_ma_7d"] == pytest.approx(1 / 7)
    assert (d8["units_7d"], d8["units_prev_7d"], d8["units_wow_change"], d8["units_wow_change_pct"]) == (0, 1, -1, -1.0)
    assert by_key[("SKU-D", "USD", "2024-02-19")]["units_wow_change_pct"] is None
    # the 28 days ending 03-03 = all data: C 4+2=6, A 3+1=4, B 2+1=3, D 1 -> 4 SKUs, band ceil(0.2*4)=1
    last_day = {(r["seller_sku"], r["sku_units_28d"], r["sales_rank"], r["sales_label"])
                for r in rows if str(r["day"]) == "2024-03-03"}
    assert last_day == {("SKU-C", 6, 1, "top seller"), ("SKU-A", 4, 2, "steady"), ("SKU-B", 3, 3, "steady"),
                        ("SKU-D", 1, 4, "low seller")}
    # on 02-25 only SKU-D is on sale: one SKU, band ceil(0.2*1)=1, so it ranks first
    early = [(r["seller_sku"], r["sku_units_28d"], r["sales_rank"], r["sales_label"])
             for r in rows if str(r["day"]) == "2024-02-25"]
    assert early == [("SKU-D", 1, 1, "top seller")]


def local_day_versions() -> list[tuple[str, dict, list[dict]]]:
    """One order per marketplace purchased at 2024-03-02 03:00Z (Tokyo's at 15:30Z), each of its own SKU."""
    v = []
    for oid, marketplace, channel, currency, purchase in (
        ("L-US", US, "Amazon.com", "USD", "2024-03-02T03:00"),  # 03-01 19:00 in Los Angeles
        ("L-UK", UK, "Amazon.co.uk", "GBP", "2024-03-02T03:00"),  # 03-02 03:00 in London
        ("L-JP", JP, "Amazon.co.jp", "JPY", "2024-03-02T15:30"),  # 03-03 00:30 in Tokyo
        ("L-XX", "A0UNKNOWN", "Non-Amazon", "USD", "2024-03-02T03:00"),  # a marketplace with no known zone
    ):
        lud = "2024-03-02T16:00"
        v.append(("2024-03-02", order(oid, lud, "Shipped", purchase, channel, "AFN", marketplace, "10.00", currency),
                  [item(oid, lud, oid + "-1", "SKU-" + oid[2:], 1, 1, "10.00", currency)]))
    return v


def test_days_are_counted_as_seller_central_counts_them(tmp_path, monkeypatch):
    write_raw(tmp_path, local_day_versions())
    build_models(tmp_path)
    utc_day, pacific_day, tokyo_day = date(2024, 3, 2), date(2024, 3, 1), date(2024, 3, 3)
    orders = {r["amazon_order_id"]: (r["purchase_day"], r["purchase_day_local"], r["marketplace_timezone"],
                                     r["is_timezone_fallback"]) for r in query(tmp_path, "stg_orders")}
    assert orders == {
        "L-US": (utc_day, pacific_day, "America/Los_Angeles", False),
        "L-UK": (utc_day, utc_day, "Europe/London", False),
        "L-JP": (utc_day, tokyo_day, "Asia/Tokyo", False),
        "L-XX": (utc_day, utc_day, "UTC", True),
    }
    daily = {r["marketplace_id"]: (r["purchase_day"], r["purchase_day_local"], r["marketplace_timezone"], r["units_ordered"])
             for r in query(tmp_path, "sku_daily_sales")}
    assert (daily[US], daily[UK], daily[JP]) == (
        (utc_day, pacific_day, "America/Los_Angeles", 1), (utc_day, utc_day, "Europe/London", 1),
        (utc_day, tokyo_day, "Asia/Tokyo", 1))
    channels = {r["sales_channel"]: (r["purchase_day"], r["purchase_day_local"], r["marketplace_timezone"])
                for r in query(tmp_path, "sales_by_channel")}
    assert (channels["Amazon.com"], channels["Amazon.co.uk"]) == (
        (utc_day, pacific_day, "America/Los_Angeles"), (utc_day, utc_day, "Europe/London"))

    def sold_on(model: str) -> dict[str, date]:
        return {r["seller_sku"]: r["day"] for r in query(
            tmp_path, model, "select seller_sku, day from m where units_ordered > 0 and "
                             + ("dimension = 'sales_channel'" if model == "sku_channel_trends" else "true"))}

    # the trend marts count each order on its marketplace's day by default, on the UTC day with trend_utc_days
    local = {"SKU-US": pacific_day, "SKU-UK": utc_day, "SKU-JP": tokyo_day, "SKU-XX": utc_day}
    assert sold_on("sku_sales_trends") == sold_on("sku_channel_trends") == local
    monkeypatch.setenv("ORDERS_VAR_TREND_UTC_DAYS", "true")
    results = {result.name: result.refresh for result in build_models(tmp_path)}
    assert results["sku_sales_trends"] == "full: its SQL or settings changed"
    assert sold_on("sku_sales_trends") == sold_on("sku_channel_trends") == dict.fromkeys(local, utc_day)


def test_sku_sales_trends_on_the_series(series):
    rows = query(series, "sku_sales_trends", "select * from m where seller_sku = 'ANOM' order by day")
    assert len(rows) == 60
    last = rows[-1]
    # days 54..60 = 3+1+3+1+3+1+30 = 42; days 33..59 = 14 ones + 13 threes = 53, + 30 = 83; days 47..53 = 13
    assert last["units_ma_7d"] == pytest.approx(42 / 7)
    assert last["units_ma_28d"] == pytest.approx(83 / 28)
    assert (last["units_wow_change"], last["units_wow_change_pct"]) == (29, pytest.approx(29 / 13))


def test_sku_channel_trends_shows_the_shift_to_afn(series):
    rows = query(series, "sku_channel_trends", "select * from m where seller_sku = 'SHIFT' and day = '2024-02-29'")
    got = {(r["dimension"], r["channel"]): (r["units_28d"], r["units_prev_28d"], r["share_28d"],
                                              r["share_prev_28d"], r["share_change"]) for r in rows}
    # latest 28 days = days 33..60 (all AFN, 56 units); the 28 before = days 5..32 (all MFN, 56 units)
    assert got == {
        ("fulfillment_channel", "AFN"): (56, 0, 1.0, 0.0, 1.0),
        ("fulfillment_channel", "MFN"): (0, 56, 0.0, 1.0, -1.0),
        ("sales_channel", "Amazon.com"): (56, 56, 1.0, 1.0, 0.0),
    }
    all_shift = query(series, "sku_channel_trends", "select count(*) as n from m where seller_sku = 'SHIFT'")
    assert all_shift[0]["n"] == 60 + 60 + 28  # Amazon.com and MFN over the 60 days, AFN from its first sale (day 33)


def test_sku_channel_trends_on_the_shop(shop):
    rows = query(shop, "sku_channel_trends", "select * from m where seller_sku = 'SKU-A' and day = '2024-03-03'")
    got = {(r["dimension"], r["channel"]): (r["units_28d"], r["share_28d"], r["share_change"]) for r in rows}
    # SKU-A: Amazon.com 3 (O1 2, O2 1), Amazon.ca 1 (O3); AFN 3 (O1, O3), MFN 1 (O2); no earlier window
    assert got == {
        ("sales_channel", "Amazon.com"): (3, 0.75, None),
        ("sales_channel", "Amazon.ca"): (1, 0.25, None),
        ("fulfillment_channel", "AFN"): (3, 0.75, None),
        ("fulfillment_channel", "MFN"): (1, 0.25, None),
    }


def test_stuck_orders(shop):
    got = {r["amazon_order_id"]: (r["order_status"], r["status_since"], r["hours_in_status"], r["reason"])
           for r in query(shop, "stuck_orders")}
    assert got == {
        "O6": ("Pending", ts("2024-03-01T06:00"), 54.0, "Pending for more than 24 h"),
        "O7": ("Unshipped", ts("2024-03-02T08:00"), 28.0, "not shipped by latest_ship_date"),
        "O8": ("PendingAvailability", ts("2024-02-20T00:00"), 300.0, "status unchanged for more than 7 days"),
    }  # O5 is Pending for only 2 h; O1/O2/O3 are Shipped; O4 Canceled
    assert {r["as_of"] for r in query(shop, "stuck_orders")} == {ts("2024-03-03T12:00")}


def test_sku_stuck_summary(shop):
    got = {r["seller_sku"]: (r["stuck_orders"], r["stuck_units"], r["oldest_age_hours"], r["statuses"])
           for r in query(shop, "sku_stuck_summary")}
    assert got == {
        "SKU-C": (2, 6, 54.0, "Pending, Unshipped"),  # O6 4 units + O7 2 units, none shipped
        "SKU-D": (1, 1, 300.0, "PendingAvailability"),
    }


def test_stuck_thresholds_are_vars(shop, tmp_path, monkeypatch):
    # Pending > 1 h also catches O5 (2 h); unchanged > 20 days no longer catches O8 (12.5 days)
    monkeypatch.setenv("ORDERS_VAR_STUCK_AFTER_DAYS", "20")
    project = load_project()
    with Build(project, shop, vars={"stuck_pending_hours": 1}) as build:
        stuck = build.query("select amazon_order_id from {{ ref('stuck_orders') }} order by 1")
        assert list(stuck["amazon_order_id"]) == ["O6", "O7", "O8"]  # the Parquet built with defaults
        results = list(build.run(["stuck_orders"]))
    assert results[0].row_count == 3
    assert [r["amazon_order_id"] for r in query(shop, "stuck_orders", "select * from m order by amazon_order_id")] == ["O5", "O6", "O7"]
    monkeypatch.delenv("ORDERS_VAR_STUCK_AFTER_DAYS")
    build_models(shop, select=["stuck_orders"])  # back to the defaults for the other tests
    assert len(query(shop, "stuck_orders")) == 3


def test_sku_trend_anomalies(series, shop):
    got = {(r["seller_sku"], str(r["day"])): (r["direction"], r["units_ordered"], r["trailing_mean"], r["history_days"], r["score"])
           for r in query(series, "sku_trend_anomalies")}
    sd = math.sqrt(28 / 27)  # 28 values at mean +-1: sum of squares 28 over 27 degrees of freedom
    assert got == {
        ("ANOM", "2024-02-29"): ("spike", 30, 2.0, 28, pytest.approx((30 - 2) / sd)),
        ("DROP", "2024-02-29"): ("drop", 0, 10.0, 28, pytest.approx((0 - 10) / sd)),
    }  # SHIFT is flat (stddev 0): never scored; every other day is within about 1 standard deviation
    assert query(shop, "sku_trend_anomalies") == []  # no SKU has 14 days of history there


# --------------------------------------------------------------------------------------------- Dagster


def test_materialize_through_dagster(tmp_path, monkeypatch):
    from orders_pipeline.defs.assets.analytics import analytics_assets

    write_raw(tmp_path, shop_versions())
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(analytics_assets, instance=instance)
    assert result.success
    materialized = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    assert "warehouse" in materialized and "sku_daily_sales" in materialized
    meta = result.asset_materializations_for_node("analytics_models")
    counts = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value for m in meta if "dagster/row_count" in m.metadata}
    assert counts["sales_by_channel"] == 7 and counts["stuck_orders"] == 3
    # staging is never written to Parquet: materialized with its definition and row count; the incremental
    # models keep their tables in the state database and say how they were refreshed
    assert counts["stg_orders"] == 8 and counts["stg_order_items"] == 9 and counts["stg_order_status_history"] == 13
    by_key = {m.asset_key.path[-1]: m.metadata for m in meta}
    assert by_key["stg_order_status_history"]["materialized"].value == "incremental"
    assert by_key["stg_orders"]["materialized"].value == "incremental" and "definition" in by_key["stg_orders"]
    assert by_key["stg_orders"]["refresh"].value == "full: no kept table yet"
    assert by_key["sku_daily_sales"]["materialized"].value == "incremental" and "path" in by_key["sku_daily_sales"]
    assert by_key["stuck_orders"]["materialized"].value == "table" and "path" in by_key["stuck_orders"]
    assert not (tmp_path / "staging").exists() and (tmp_path / "_state" / "models.duckdb").exists()

    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = {key for key, e in evaluations.items() if not e.passed}
    assert failed == {("stuck_orders", "no_stuck_orders")}
    stuck = evaluations[("stuck_orders", "no_stuck_orders")]
    assert stuck.severity == dg.AssetCheckSeverity.WARN and stuck.metadata["failing_rows"].value == 3
    assert ("sales_by_channel", "reconciles_with_sku_daily_sales") in evaluations

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from sales_by_channel").fetchone() == (7,)
        assert con.execute("select count(*) from orders").fetchone() == (13,)
        assert con.execute("select sum(units_ordered) from sku_daily_sales").fetchone() == (14,)
        assert con.execute("select count(*) from stg_orders").fetchone() == (8,)  # a view over the raw Parquet

    # a subset run reads its unselected upstream tables from their Parquet
    (tmp_path / "marts" / "sku_sales_trends.parquet").unlink()
    subset = dg.materialize(analytics_assets, instance=instance, selection=["sku_sales_trends"])
    assert subset.success
    assert {e.asset_key.path[-1] for e in subset.get_asset_materialization_events()} == {"sku_sales_trends"}
    assert (tmp_path / "marts" / "sku_sales_trends.parquet").exists()

    # ... and reads its unselected upstream staging models from their kept tables
    (tmp_path / "marts" / "sku_daily_sales.parquet").unlink()
    subset = dg.materialize(analytics_assets, instance=instance, selection=["sku_daily_sales"])
    assert subset.success
    assert query(tmp_path, "sku_daily_sales", "select sum(units_ordered) as u from m") == [{"u": 14}]
