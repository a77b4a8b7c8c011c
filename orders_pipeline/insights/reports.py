"""The chart files under $ORDERS_DATA_DIR/reports, drawn from the sku_sales_trends and sales_by_channel marts."""

from __future__ import annotations

import os
import uuid
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
    """Units per day with 7/28-day averages for the top sellers of the latest 28 days (all currencies together)."""
    rows = con.execute(
        """
        with trends as (select * from read_parquet($path)),
        last_day as (select max(day) as day from trends),
        top_skus as (
            select distinct trends.seller_sku, trends.sales_rank, trends.sku_units_28d
            from trends join last_day using (day) order by sales_rank, seller_sku limit $top
        )
        select trends.seller_sku, top_skus.sales_rank, top_skus.sku_units_28d, trends.day,
            sum(trends.units_ordered) as units, sum(trends.units_ma_7d) as ma_7d, sum(trends.units_ma_28d) as ma_28d
        from trends join top_skus using (seller_sku) cross join last_day
        where trends.day > last_day.day - $days
        group by all order by top_skus.sales_rank, trends.seller_sku, trends.day
        """,
        {"path": str(mart_path(root, "sku_sales_trends")), "top": TOP_SKUS, "days": TREND_DAYS},
    ).fetchall()
    grouped: dict[str, list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    series = [
        DailySeries(
            label=f"#{days[0][1]} {sku} — {days[0][2]:,} units in the latest 28 days",
            days=[row[3] for row in days],
            units=[float(row[4]) for row in days],
            ma_7d=[float(row[5]) for row in days],
            ma_28d=[float(row[6]) for row in days],
        )
        for sku, days in grouped.items()
    ]
    table = "| rank | seller_sku | units, latest 28 days | latest 7-day average |\n|---:|---|---:|---:|\n" + "\n".join(
        f"| {days[0][1]} | {sku} | {days[0][2]:,} | {float(days[-1][5]):.2f} |" for sku, days in grouped.items()
    )
    svg = sku_trend_chart(f"Top {len(series)} SKUs: units ordered per day (last {TREND_DAYS} days)", series)
    return Report(path, svg, table)


def _sales_by_channel(con: duckdb.DuckDBPyConnection, root: Path, path: Path) -> Report:
    """Units per sales and fulfillment channel over the latest 28 days, revenue noted per currency."""
    rows = con.execute(
        """
        with sales as (select * from read_parquet($path)),
        recent as (select * from sales where purchase_day > (select max(purchase_day) from sales) - $days),
        per_currency as (
            select sales_channel, fulfillment_channel, currency, sum(units_ordered) as units, sum(revenue) as revenue
            from recent group by all
        )
        select sales_channel, fulfillment_channel, sum(units) as units,
            string_agg(currency || ' ' || format('{:,.2f}', revenue), ', ' order by revenue desc) as revenue
        from per_currency group by all order by units desc
        """,
        {"path": str(mart_path(root, "sales_by_channel")), "days": CHANNEL_DAYS},
    ).fetchall()
    bars = [Bar(f"{channel} · {fulfillment}", float(units), f"({revenue})") for channel, fulfillment, units, revenue in rows]
    table = "| sales_channel | fulfillment_channel | units | revenue |\n|---|---|---:|---|\n" + "\n".join(
        f"| {channel} | {fulfillment} | {units:,} | {revenue} |" for channel, fulfillment, units, revenue in rows
    )
    svg = bar_chart(f"Units ordered by channel, latest {CHANNEL_DAYS} days (revenue per currency)", bars, "units")
    return Report(path, svg, table)


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    temp.write_text(text)
    os.replace(temp, path)
