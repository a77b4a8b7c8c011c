"""The charts: drawn by the sales_charts asset from real marts, well-formed SVG, shown in the asset's metadata."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import date

import duckdb

from orders_pipeline.defs.assets.reports import SALES_CHARTS
from orders_pipeline.insights.charts import Bar, DailySeries, bar_chart, sku_trend_chart
from orders_pipeline.insights.reports import SALES_BY_CHANNEL_FILE, SKU_TRENDS_FILE, TOP_SKUS
from orders_pipeline.storage.layout import mart_path, reports_dir

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_sku_trend_chart_shows_the_top_skus_with_both_moving_averages(landed):
    svg = (reports_dir(landed.root) / SKU_TRENDS_FILE).read_text()
    top = duckdb.sql(
        f"select distinct seller_sku, sales_rank from '{mart_path(landed.root, 'sku_sales_trends')}' "
        f"where day = (select max(day) from '{mart_path(landed.root, 'sku_sales_trends')}') "
        f"order by sales_rank, seller_sku limit {TOP_SKUS}"
    ).fetchall()
    labels = " ".join(texts(svg))
    for sku, _ in top:
        assert sku in labels
    assert len(list(ET.fromstring(svg).iter(f"{SVG}polyline"))) == 2 * TOP_SKUS  # 7-day and 28-day lines per SKU
    assert "7-day average" in labels and "28-day average" in labels


def test_the_channel_chart_has_one_bar_per_sales_and_fulfillment_channel(landed):
    svg = (reports_dir(landed.root) / SALES_BY_CHANNEL_FILE).read_text()
    channels = duckdb.sql(
        f"select distinct sales_channel || ' · ' || fulfillment_channel from '{mart_path(landed.root, 'sales_by_channel')}'"
    ).fetchall()
    assert sorted(label for (label,) in channels) == sorted(t for t in texts(svg) if " · " in t)


def test_the_charts_are_embedded_in_the_assets_metadata(landed):
    event = landed.instance.get_latest_materialization_event(SALES_CHARTS)
    metadata = event.asset_materialization.metadata
    for name, file in (("sku_trends", SKU_TRENDS_FILE), ("sales_by_channel", SALES_BY_CHANNEL_FILE)):
        markdown = metadata[name].value
        image = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
        assert base64.b64decode(image.group(1)).decode() == (reports_dir(landed.root) / file).read_text()
        assert "|---" in markdown  # the numbers behind the picture
        assert metadata[f"{name}_path"].value.endswith(file)


def test_charts_without_data_and_with_awkward_labels_stay_valid_svg():
    assert "No sales yet." in texts(sku_trend_chart("t", []))
    assert "No sales yet." in texts(bar_chart("t", [], "units"))
    series = DailySeries("<SKU & co>", [date(2024, 1, 1), date(2024, 1, 2)], [0, 3], [0, 1.5], [0, 0.1])
    assert "<SKU & co>" in texts(sku_trend_chart("a < b", [series]))
    assert "x & y" in texts(bar_chart("t", [Bar("x & y", 0)], "units"))
