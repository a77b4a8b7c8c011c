"""The chart files under $ORDERS_DATA_DIR/reports, drawn from the sku_sales_trends and sales_by_channel marts.

Numbers of two seller accounts are never added: each panel or bar is one account's, labelled with it when the data
holds several."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orders_pipeline.insights.charts import Bar, DailySeries, bar_chart, sku_trend_chart
from orders_pipeline.storage.layout import mart_path, reports_dir

SKU_TRENDS_FILE = "sku_trends.svg"
SALES_BY_CHANNEL_FILE = "sales_by_channel.svg"
TOP_SKUS = 5
TREND_DAYS = 90
CHANNEL_DAYS = 28


@dataclass(frozen=True)
class Report:
    """A written chart: its file, its SVG text and a markdown table of the numbers behind it."""

    path: Path
    svg: str
    table_markdown: str


def write_reports(root: Path) -> list[Report]:
    """Draw both charts from the marts under `root` and replace the files atomically."""
    target = reports_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        reports = [_sku_trends(con, root, target / SKU_TRENDS_FILE), _sales_by_channel(con, root, target / SALES_BY_CHANNEL_FILE)]
    for report in reports:
        _write_atomically(report.path, report.svg)
    return reports


def _sku_trends(con: duckdb.DuckDBPyConnection, root: Path, path: Path) -> Report:
    """Units per day with 7/28-day averages for the top sellers of the accounts' latest 28 days (all currencies of a
    SKU together, accounts never): one panel per account and SKU, TOP_SKUS panels in all, every account's #1 first,
    then every #2, and so on (with more accounts than panels, the accounts first by name)."""
    rows = con.execute(
        """
        with trends as (select * from read_parquet($path)),
        last_days as (select account, max(day) as last_day from trends group by account),
        top_skus as (
            select distinct trends.account, trends.seller_sku, trends.sales_rank, trends.sku_units_28d
            from trends join last_days on trends.account = last_days.account and trends.day = last_days.last_day
            order by sales_rank, account, seller_sku limit $top
        )
        select trends.account, trends.seller_sku, top_skus.sales_rank, top_skus.sku_units_28d, trends.day,
            sum(trends.units_ordered) as units, sum(trends.units_ma_7d) as ma_7d, sum(trends.units_ma_28d) as ma_28d
        from trends
        join top_skus on trends.account = top_skus.account and trends.seller_sku = top_skus.seller_sku
        join last_days on trends.account = last_days.account
        where trends.day > last_days.last_day - $days
        group by all order by top_skus.sales_rank, trends.account, trends.seller_sku, trends.day
        """,
        {"path": str(mart_path(root, "sku_sales_trends")), "top": TOP_SKUS, "days": TREND_DAYS},
    ).fetchall()
    grouped: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    named = _account_prefix({account for account, _ in grouped})
    series = [
        DailySeries(
            label=f"{named(account)}#{days[0][2]} {sku} — {days[0][3]:,} units in the latest 28 days",
            days=[row[4] for row in days],
            units=[float(row[5]) for row in days],
            ma_7d=[float(row[6]) for row in days],
            ma_28d=[float(row[7]) for row in days],
        )
        for (account, sku), days in grouped.items()
    ]
    table = "| account | rank | seller_sku | units, latest 28 days | latest 7-day average |\n|---|---:|---|---:|---:|\n" + "\n".join(
        f"| {account} | {days[0][2]} | {sku} | {days[0][3]:,} | {float(days[-1][6]):.2f} |" for (account, sku), days in grouped.items()
    )
    svg = sku_trend_chart(f"Top {len(series)} SKUs: units ordered per day (last {TREND_DAYS} days)", series)
    return Report(path, svg, table)


def _sales_by_channel(con: duckdb.DuckDBPyConnection, root: Path, path: Path) -> Report:
    """Units per account, sales and fulfillment channel over each account's latest 28 days, revenue noted per
    currency."""
    rows = con.execute(
        """
        with sales as (select * from read_parquet($path)),
        last_days as (select account, max(purchase_day) as last_day from sales group by account),
        recent as (
            select sales.* from sales join last_days on sales.account = last_days.account
            where sales.purchase_day > last_days.last_day - $days
        ),
        per_currency as (
            select account, sales_channel, fulfillment_channel, currency, sum(units_ordered) as units,
                sum(revenue) as revenue
            from recent group by all
        )
        select account, sales_channel, fulfillment_channel, sum(units) as units,
            string_agg(currency || ' ' || format('{:,.2f}', revenue), ', ' order by revenue desc) as revenue
        from per_currency group by all order by units desc, account
        """,
        {"path": str(mart_path(root, "sales_by_channel")), "days": CHANNEL_DAYS},
    ).fetchall()
    named = _account_prefix({row[0] for row in rows})
    bars = [Bar(f"{named(account)}{channel} · {fulfillment}", float(units), f"({revenue})")
            for account, channel, fulfillment, units, revenue in rows]
    table = "| account | sales_channel | fulfillment_channel | units | revenue |\n|---|---|---|---:|---|\n" + "\n".join(
        f"| {account} | {channel} | {fulfillment} | {units:,} | {revenue} |" for account, channel, fulfillment, units, revenue in rows
    )
    svg = bar_chart(f"Units ordered by channel, latest {CHANNEL_DAYS} days (revenue per currency)", bars, "units")
    return Report(path, svg, table)


def _account_prefix(accounts: set[str]) -> Callable[[str], str]:
    """How a label names its account: not at all for one account, `account · ` for several."""
    return (lambda account: "") if len(accounts) <= 1 else (lambda account: f"{account} · ")


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    temp.write_text(text)
    os.replace(temp, path)
